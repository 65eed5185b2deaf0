package field

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

var (
	errOuter = errors.New("outer: invalid")
	errInner = errors.New("inner: invalid")
)

func TestChecker(t *testing.T) {
	tests := []struct {
		name  string
		check func(*Checker)
		want  string // "" = no error
	}{
		{"int in range", func(c *Checker) { c.IntIn("n", 3, 1, 3) }, ""},
		{"int below", func(c *Checker) { c.IntIn("n", 0, 1, 3) }, "n = 0: want an integer in [1, 3]"},
		{"int64 above", func(c *Checker) { c.Int64In("big", 1<<40, 1, 1<<31-1) }, "big = 1099511627776: want an integer in [1, 2147483647]"},
		{"float NaN", func(c *Checker) { c.FloatIn("p", math.NaN(), 0, 1) }, "p = NaN: want a number in [0, 1]"},
		{"float in range", func(c *Checker) { c.FloatIn("p", 1, 0, 1) }, ""},
		{"one of", func(c *Checker) { c.OneOf("mode", "x", "a", "b") }, `mode = "x": want one of a, b`},
		{"two errors", func(c *Checker) { c.IntIn("a", 0, 1, 2); c.Add("b", "v", "w") }, "a = 0: want an integer in [1, 2]\nb = v: want w"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker(errOuter)
			tt.check(c)
			err := c.Err()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want || !errors.Is(err, errOuter) {
				t.Fatalf("err = %v, want %q wrapping errOuter", err, tt.want)
			}
		})
	}
}

func TestInclude(t *testing.T) {
	inner := NewChecker(errInner)
	inner.IntIn("n_views", 17, 2, 16)
	inner.FloatIn("hue", 0.7, 0, 0.5)
	innerErr := fmt.Errorf("wrapped: %w", inner.Err())

	c := NewChecker(errOuter)
	c.Include("augment", innerErr)
	c.Include("", innerErr)
	c.Include("decode", errors.New("odd"))
	c.Include("model", nil)
	err := c.Err()
	want := "augment.n_views = 17: want an integer in [2, 16]\n" +
		"augment.hue = 0.7: want a number in [0, 0.5]\n" +
		"n_views = 17: want an integer in [2, 16]\n" +
		"hue = 0.7: want a number in [0, 0.5]\n" +
		"decode: outer: invalid: odd"
	if err == nil || err.Error() != want {
		t.Fatalf("err =\n%v\nwant\n%s", err, want)
	}
	if !errors.Is(err, errOuter) || !errors.Is(err, errInner) {
		t.Errorf("err does not wrap both sentinels")
	}
	list := List(err)
	if len(list) != 4 || list[0].Key != "augment.n_views" || list[3].Key != "hue" {
		t.Errorf("List = %v", list)
	}
	var fe *Error
	if !errors.As(err, &fe) || fe.Key != "augment.n_views" || fe.Value != 17 {
		t.Errorf("As = %+v", fe)
	}
}

func TestZeroChecker(t *testing.T) {
	var c Checker
	c.IntIn("n", 5, 1, 3)
	if err := c.Err(); err == nil || err.Error() != "n = 5: want an integer in [1, 3]" {
		t.Fatalf("err = %v", err)
	}
}
