package nn

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// BenchmarkSgemm compares the own GEMM with the BLAS on shapes from the
// benchmark models' convolutions (forward, transposed-A input gradient,
// transposed-B weight gradient), reporting GFLOP/s. One core:
// OPENBLAS_NUM_THREADS=1 GOMAXPROCS=1 go test ./nn -run - -bench Sgemm
func BenchmarkSgemm(bm *testing.B) {
	for _, s := range []struct {
		ta, tb  bool
		m, n, k int
	}{
		{false, false, 256, 1152, 576}, {false, false, 64, 4608, 576}, {false, false, 32, 8192, 288},
		{false, false, 2048, 288, 512}, {false, false, 1024, 1024, 1024},
		{true, false, 576, 1152, 256},
		{false, true, 256, 576, 4608}, {false, true, 32, 288, 8192},
	} {
		a, b, c := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
		for i := range a {
			a[i] = float32(i%7) - 3
		}
		for i := range b {
			b[i] = float32(i%5) - 2
		}
		lda, ldb := s.k, s.n
		if s.ta {
			lda = s.m
		}
		if s.tb {
			ldb = s.k
		}
		ta, tb := blas.NoTrans, blas.NoTrans
		if s.ta {
			ta = blas.Trans
		}
		if s.tb {
			tb = blas.Trans
		}
		impls := map[string]func(){
			"blas": func() { blas32.Implementation().Sgemm(ta, tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n) },
		}
		if ownSgemm != nil {
			impls["own"] = func() { sgemmWith(*ownSgemm, s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, b, ldb, 0, c, s.n) }
		}
		for name, f := range impls {
			bm.Run(fmt.Sprintf("%s/%dx%dx%d/ta=%t/tb=%t", name, s.m, s.n, s.k, s.ta, s.tb), func(bm *testing.B) {
				for bm.Loop() {
					f()
				}
				bm.ReportMetric(2*float64(s.m*s.n*s.k)*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
