package nn

import (
	"os"

	"golang.org/x/sys/cpu"
)

// kernelAVX512 is kernelFunc in AVX-512 (sgemm_amd64.s).
//
//go:noescape
func kernelAVX512(k int, a *float32, sk, si int, b *float32, sb int, c *float32, ldc int, add bool)

// ownSgemm is the micro-kernel float32 GEMMs use instead of the BLAS, nil
// where there is none for this CPU. SUPFLOW_SGEMM=blas keeps the BLAS.
var ownSgemm = func() kernelFunc {
	if cpu.X86.HasAVX512F && os.Getenv("SUPFLOW_SGEMM") != "blas" {
		return kernelAVX512
	}
	return nil
}()
