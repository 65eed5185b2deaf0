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
