//go:build cgo && !noopenblas

package blasimpl

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int num_threads);
// int openblas_get_num_threads(void);
import "C"

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

const name = "openblas"

func init() {
	impl := netlib.Implementation{}
	blas32.Use(impl)
	blas64.Use(impl)
	G.Use(impl)
}

// SetThreads sets OpenBLAS's thread count (n >= 1).
func SetThreads(n int) { C.openblas_set_num_threads(C.int(max(n, 1))) }

// Threads reports OpenBLAS's thread count.
func Threads() int { return int(C.openblas_get_num_threads()) }
