package main

import (
	"os"
	"runtime/debug"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/nn"
)

// tuneRuntime applies the process-wide settings that come from the
// environment rather than the config; call it before any op runs.
//   - GOGC: unset, a command that holds a model's tensors collects at
//     engine.GCPercent instead of 100 (see GCPercent); set, the Go runtime
//     has already applied it.
//   - SUPFLOW_SIMD=off keeps nn's Go loops instead of the AVX-512 ones.
//   - SUPFLOW_SGEMM=blas keeps OpenBLAS for float32 GEMMs instead of nn's
//     own AVX-512 kernel.
func tuneRuntime(tensors bool) {
	if tensors && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(engine.GCPercent)
	}
	if os.Getenv("SUPFLOW_SIMD") == "off" {
		nn.SetSIMD(false)
	}
	if os.Getenv("SUPFLOW_SGEMM") == "blas" {
		nn.SetOwnSgemm(false)
	}
}
