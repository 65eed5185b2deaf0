//go:build !amd64

package nn

// cpuSgemm: no micro-kernels for this architecture; float32 GEMMs use the BLAS.
var cpuSgemm *kernels
