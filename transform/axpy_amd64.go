//go:build !purego

package transform

// hasAVX2 reports AVX2 and FMA, with the OS saving the YMM registers.
var hasAVX2 = cpuHasAVX2FMA()

func cpuHasAVX2FMA() bool

// axpyAVX2 is axpy for len(row) a multiple of 8 and len(acc) >= len(row).
//
//go:noescape
func axpyAVX2(acc []float32, row []byte, w float32)

// axpy adds w*row[i] to acc[i] for every i < len(row).
func axpy(acc []float32, row []byte, w float32) {
	if hasAVX2 {
		n := len(row) &^ 7
		axpyAVX2(acc[:n], row[:n], w)
		acc, row = acc[n:], row[n:]
	}
	axpyGeneric(acc, row, w)
}
