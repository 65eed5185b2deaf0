package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// stopped is the cause main's context ends with when SIGINT or SIGTERM
// arrives. It is context.Canceled to errors.Is, as the context's own error
// is, so code that ignores a cancellation keeps doing so.
type stopped struct{ sig syscall.Signal }

func (s stopped) Error() string { return "stopped by " + signalName(s.sig) }

func (s stopped) Is(target error) bool { return target == context.Canceled }

// exitCode is the shell's convention for a process ended by a signal.
func (s stopped) exitCode() int { return 128 + int(s.sig) }

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// notifyContext is signal.NotifyContext for SIGINT and SIGTERM with the
// signal as the context's cause (stopped), so that run can exit with
// 128 + its number. A second signal ends the process at once, with the
// same code, for a drain that does not finish.
func notifyContext(parent context.Context, stderr io.Writer) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	quit := make(chan struct{})
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			cancel(stopped{s.(syscall.Signal)})
		case <-quit:
			return
		}
		select {
		case s := <-ch:
			st := stopped{s.(syscall.Signal)}
			fmt.Fprintf(stderr, "supflow: %v again: exiting without draining\n", st)
			os.Exit(st.exitCode())
		case <-quit:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(quit)
		cancel(nil)
	}
}

// stopCause returns the signal that ended ctx, if one did.
func stopCause(ctx context.Context) (stopped, bool) {
	var s stopped
	ok := errors.As(context.Cause(ctx), &s)
	return s, ok
}

// interruptible runs f, which may block on a file or the network, and
// returns its error, or ctx's cause as soon as ctx ends (f is left to
// finish in the background: the process is about to exit).
func interruptible(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
