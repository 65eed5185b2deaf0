package nn

import "golang.org/x/sys/cpu"

//go:generate go run ./internal/sgemmgen

// kernel12AVX512 and kernel8AVX512 are the kernelFuncs in AVX-512
// (sgemm_amd64.s, generated).
//
//go:noescape
func kernel12AVX512(k int, a *float32, sk, si int, b *float32, sb int, c *float32, ldc int, add bool)

//go:noescape
func kernel8AVX512(k int, a *float32, sk, si int, b *float32, sb int, c *float32, ldc int, add bool)

// cpuSgemm are the micro-kernels float32 GEMMs can use instead of the BLAS,
// nil where there are none for this CPU.
var cpuSgemm = func() *kernels {
	if cpu.X86.HasAVX512F {
		return &kernels{tall: kernel12AVX512, short: kernel8AVX512}
	}
	return nil
}()
