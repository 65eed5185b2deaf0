//go:build !amd64

package nn

// ownSgemm: no micro-kernels for this architecture; float32 GEMMs use the BLAS.
var ownSgemm *kernels
