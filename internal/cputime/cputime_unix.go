//go:build unix

package cputime

import (
	"syscall"
	"time"
)

// Seconds is the process's CPU time so far, user and system; 0 if the
// system cannot say.
func Seconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
