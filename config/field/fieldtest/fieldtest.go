// Package fieldtest checks, in table tests of Validate methods, that an
// error names the key it should (package config/field). It is for tests
// only.
package fieldtest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/supflow/supflow/config/field"
)

// Check returns nil when err is what a Validate table test expects for
// key: nil when key is "", otherwise exactly one *field.Error named key,
// whose message starts with "key = " and whose chain holds every one of
// sentinels. Otherwise it returns an error saying what differs.
func Check(err error, key string, sentinels ...error) error {
	if key == "" {
		if err != nil {
			return fmt.Errorf("Validate = %v, want nil", err)
		}
		return nil
	}
	fe := field.List(err)
	if len(fe) != 1 || fe[0].Key != key || !strings.HasPrefix(err.Error(), key+" = ") {
		return fmt.Errorf("Validate = %v, want one error naming %s", err, key)
	}
	for _, s := range sentinels {
		if !errors.Is(err, s) {
			return fmt.Errorf("Validate = %v, want it to wrap %v", err, s)
		}
	}
	return nil
}
