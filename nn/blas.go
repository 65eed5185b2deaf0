package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// gemm computes row-major c = alpha*op(a)*op(b) + beta*c with c m×n and the
// inner dimension k, through whichever BLAS gonum is set to use, or in
// float32 on an AVX-512 CPU through sgemm.go's own kernel.
func gemm[T float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	switch a := any(a).(type) {
	case []float64:
		blas64.Implementation().Dgemm(ta, tb, m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	case []float32:
		if ownSgemm != nil {
			sgemmWith(*ownSgemm, transA, transB, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
			return
		}
		blas32.Implementation().Sgemm(ta, tb, m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	}
}

// Sgemm is the float32 GEMM supflow's ops use (row-major BLAS sgemm
// semantics): the own AVX-512 kernel where the CPU has one (OwnSgemm), else
// the BLAS. For benchmarks that measure the machine's peak.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// ownSgemm are the micro-kernels float32 GEMMs use: cpuSgemm unless
// SetOwnSgemm turned them off.
var ownSgemm = cpuSgemm

// OwnSgemm reports whether float32 GEMMs run on supflow's own kernel
// rather than the BLAS.
func OwnSgemm() bool { return ownSgemm != nil }

// SetOwnSgemm chooses whether float32 GEMMs run on supflow's own AVX-512
// kernel where the CPU has one (true, the default) or on the BLAS (false:
// to compare, or on a CPU where AVX-512 lowers the clock of everything
// else). The ops read the choice without synchronisation: call it at
// startup, before any op runs.
func SetOwnSgemm(on bool) {
	ownSgemm = nil
	if on {
		ownSgemm = cpuSgemm
	}
}
