//go:build !cgo

package main

// blasKernel reports that gonum's pure-Go BLAS has no kernel selection.
func blasKernel() string { return "pure Go" }
