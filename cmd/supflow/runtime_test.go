package main

import (
	"runtime/debug"
	"testing"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/nn"
)

// TestTuneRuntime checks the mapping of GOGC and SUPFLOW_SGEMM onto the
// process settings (nn does not report SIMD; nn's own tests cover SetSIMD).
func TestTuneRuntime(t *testing.T) {
	own := nn.OwnSgemm()
	t.Cleanup(func() { nn.SetSIMD(true); nn.SetOwnSgemm(own) })
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })

	t.Setenv("GOGC", "")
	t.Setenv("SUPFLOW_SIMD", "off")
	t.Setenv("SUPFLOW_SGEMM", "blas")
	tuneRuntime(true)
	if got := debug.SetGCPercent(100); got != engine.GCPercent {
		t.Errorf("GOGC unset: GC percent %d, want %d", got, engine.GCPercent)
	}
	if nn.OwnSgemm() {
		t.Error("SUPFLOW_SGEMM=blas left the own GEMM on")
	}
	tuneRuntime(false)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC unset, no tensors: GC percent %d, want it left at 100", got)
	}

	t.Setenv("GOGC", "100")
	tuneRuntime(true)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=100: GC percent %d, want it left at 100", got)
	}
}
