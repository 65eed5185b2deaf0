package messages

import (
	"errors"
	"fmt"
)

// ErrPermanent marks a failure that no retry can fix (a corrupt image, a
// malformed message): the bus dead-letters such a message at once, with the
// error text as the reason, instead of redelivering it.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// ErrSkip marks a valid message that is not meant for this consumer (for
// example one of another run): the bus acknowledges it and publishes nothing.
var ErrSkip = errors.New("message skipped")

// Skip wraps err so that errors.Is(err, ErrSkip) holds; err may be nil.
func Skip(err error) error {
	if err == nil {
		return ErrSkip
	}
	if errors.Is(err, ErrSkip) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrSkip, err)
}
