//go:build cgo

package main

import (
	"errors"

	"github.com/supflow/supflow/xla"
	"github.com/supflow/supflow/xla/device"
)

// withCgo: this build loads PJRT plugins (xla/device).
const withCgo = true

var errNoCgo = errors.New("no cgo") // unused with cgo: pjrt_nocgo.go's

// openDevice loads the PJRT plugin at path (xla/device).
func openDevice(path string) (xla.Runner, error) { return device.Open(path, nil) }
