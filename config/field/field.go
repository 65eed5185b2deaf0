// Package field reports invalid settings by the key a user writes in
// pipeline.yaml, so that a package's Config.Validate and the config package,
// which composes those Configs into sections, give the same message:
// augment's Validate reports "n_views = 17: want ...", and config, through
// Checker.Include, reports it as "augment.n_views = 17: want ...".
//
// It imports only the standard library and must not import config or any
// other supflow package: every package that owns a Config may use it.
package field

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one setting out of range. Key is the setting's YAML key relative
// to the Config that reports it (dotted below it, as in "jitter.hue");
// Err, returned by Unwrap, is the reporting package's sentinel.
type Error struct {
	Key   string
	Value any
	Want  string
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("%s = %v: want %s", e.Key, e.Value, e.Want) }

func (e *Error) Unwrap() error { return e.Err }

// Checker collects the Errors of one Validate call. The zero value is
// usable; NewChecker sets the sentinel every collected error wraps.
// A Checker is not safe for concurrent use.
type Checker struct {
	sentinel error
	errs     []error
}

// NewChecker returns a Checker whose errors wrap sentinel.
func NewChecker(sentinel error) *Checker { return &Checker{sentinel: sentinel} }

// Add reports key, holding v, as not what is wanted.
func (c *Checker) Add(key string, v any, want string) {
	c.errs = append(c.errs, &Error{Key: key, Value: v, Want: want, Err: c.sentinel})
}

// IntIn checks lo <= v <= hi.
func (c *Checker) IntIn(key string, v, lo, hi int) {
	if v < lo || v > hi {
		c.Add(key, v, fmt.Sprintf("an integer in [%d, %d]", lo, hi))
	}
}

// Int64In checks lo <= v <= hi.
func (c *Checker) Int64In(key string, v, lo, hi int64) {
	if v < lo || v > hi {
		c.Add(key, v, fmt.Sprintf("an integer in [%d, %d]", lo, hi))
	}
}

// FloatIn checks lo <= v <= hi; NaN is refused.
func (c *Checker) FloatIn(key string, v, lo, hi float64) {
	if !(v >= lo && v <= hi) {
		c.Add(key, v, fmt.Sprintf("a number in [%g, %g]", lo, hi))
	}
}

// OneOf checks that v is one of allowed.
func (c *Checker) OneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.Add(key, fmt.Sprintf("%q", v), "one of "+strings.Join(allowed, ", "))
	}
}

// Include adds the errors of err, the result of a nested Config's Validate,
// with their keys under prefix ("" keeps them as they are, for a Config
// inlined in its parent's YAML). Each added Error wraps both the Checker's
// sentinel and the nested one. An error that holds no Error is added as
// "prefix: err".
func (c *Checker) Include(prefix string, err error) {
	if err == nil {
		return
	}
	fields := List(err)
	if len(fields) == 0 {
		if c.sentinel != nil {
			err = fmt.Errorf("%w: %w", c.sentinel, err)
		}
		if prefix != "" {
			err = fmt.Errorf("%s: %w", prefix, err)
		}
		c.errs = append(c.errs, err)
		return
	}
	for _, e := range fields {
		key := e.Key
		if prefix != "" {
			key = prefix + "." + key
		}
		c.errs = append(c.errs, &Error{Key: key, Value: e.Value, Want: e.Want, Err: errors.Join(c.sentinel, e.Err)})
	}
}

// Err returns every collected error joined (errors.Join), or nil.
func (c *Checker) Err() error { return errors.Join(c.errs...) }

// List returns the Errors in err's tree (as errors.Join and multiple %w
// build it), in order; it does not look inside an Error.
func List(err error) []*Error {
	var out []*Error
	var visit func(error)
	visit = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				visit(inner)
			}
		case interface{ Unwrap() error }:
			visit(e.Unwrap())
		}
	}
	visit(err)
	return out
}
