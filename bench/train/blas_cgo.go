//go:build cgo

package main

// #cgo LDFLAGS: -lopenblas
// char* openblas_get_corename(void);
// char* openblas_get_config(void);
import "C"

// blasKernel reports the OpenBLAS core kernel and build configuration.
func blasKernel() string {
	return C.GoString(C.openblas_get_corename()) + " (" + C.GoString(C.openblas_get_config()) + ")"
}
