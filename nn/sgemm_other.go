//go:build !amd64

package nn

// ownSgemm: no micro-kernel for this architecture; float32 GEMMs use the BLAS.
var ownSgemm kernelFunc
