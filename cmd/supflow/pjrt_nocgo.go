//go:build !cgo

package main

import (
	"errors"

	"github.com/supflow/supflow/xla"
)

// withCgo: this build cannot load a PJRT plugin (xla/device needs cgo).
const withCgo = false

var errNoCgo = errors.New("this supflow was built without cgo (CGO_ENABLED=0): build it with CGO_ENABLED=1 to load a plugin")

// openDevice refuses: no cgo.
func openDevice(string) (xla.Runner, error) { return nil, errNoCgo }
