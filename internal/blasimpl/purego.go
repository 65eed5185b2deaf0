//go:build !cgo

package blasimpl

const name = "gonum"
