// Package blasimpl selects the BLAS that every numeric package of supflow
// uses. Importing it (for its side effect) switches gonum's blas32/blas64
// and gorgonia to OpenBLAS when the binary is built with cgo (unless with
// the noopenblas tag: a cgo binary for the XLA backend on a machine without
// libopenblas); pure-Go builds keep gonum's native BLAS, which is correct
// but several times slower.
package blasimpl

// Name reports which BLAS is in use: "openblas" or "gonum".
func Name() string { return name }
