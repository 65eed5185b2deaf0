//go:build unix

package cputime

import "testing"

// TestSecondsGrows: a busy loop adds to the process's CPU time.
func TestSecondsGrows(t *testing.T) {
	start := Seconds()
	x := 0
	for Seconds() <= start {
		for i := range 1 << 20 {
			x += i
		}
	}
	_ = x
}
