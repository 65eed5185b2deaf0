package store

import (
	"errors"
	"strings"
	"testing"
)

func TestValidKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"train/cat/0001.png", true},
		{"a", true},
		{"data/train/chat noir/é.png", true},
		{"", false},
		{"/abs/key", false},
		{"a/../b", false},
		{"..", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/b/", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"bad\xff", false},
		{strings.Repeat("k", maxKeyLen+1), false},
	}
	for _, tt := range tests {
		err := ValidKey(tt.key)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidKey)) {
			t.Errorf("ValidKey(%q) = %v, want ok=%t", tt.key, err, tt.ok)
		}
	}
}
