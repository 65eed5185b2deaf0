package fieldtest

import (
	"errors"
	"testing"

	"github.com/supflow/supflow/config/field"
)

func TestCheck(t *testing.T) {
	sentinel := errors.New("pkg: invalid")
	one := func(key string) error {
		k := field.NewChecker(sentinel)
		k.Add(key, 3, "less")
		return k.Err()
	}
	two := func() error {
		k := field.NewChecker(sentinel)
		k.Add("a", 1, "x")
		k.Add("b", 2, "y")
		return k.Err()
	}
	for _, tc := range []struct {
		name string
		err  error
		key  string
		ok   bool
	}{
		{"nil for no key", nil, "", true},
		{"error for no key", one("a"), "", false},
		{"the key", one("a"), "a", true},
		{"another key", one("b"), "a", false},
		{"two keys", two(), "a", false},
		{"nil for a key", nil, "a", false},
		{"not a field error", sentinel, "a", false},
	} {
		if got := Check(tc.err, tc.key, sentinel); (got == nil) != tc.ok {
			t.Errorf("%s: Check = %v", tc.name, got)
		}
	}
	if Check(one("a"), "a", errors.New("other")) == nil {
		t.Error("a missing sentinel passed")
	}
}
