//go:build !amd64 || purego

package transform

// axpy adds w*row[i] to acc[i] for every i < len(row).
func axpy(acc []float32, row []byte, w float32) { axpyGeneric(acc, row, w) }
