package nn

import (
	"os"
	"testing"
)

// TestMain honours the variables cmd/supflow maps onto SetSIMD and
// SetOwnSgemm, so that `SUPFLOW_SIMD=off go test ./nn` runs every op on the
// Go loops and `SUPFLOW_SGEMM=blas go test ./nn` on the BLAS.
func TestMain(m *testing.M) {
	if os.Getenv("SUPFLOW_SIMD") == "off" {
		SetSIMD(false)
	}
	if os.Getenv("SUPFLOW_SGEMM") == "blas" {
		SetOwnSgemm(false)
	}
	os.Exit(m.Run())
}

// TestFastPathSetters checks that the setters switch the fast paths off and
// back to what the CPU has, and restores the starting state.
func TestFastPathSetters(t *testing.T) {
	vec, own := vecLoops32, ownSgemm
	t.Cleanup(func() { vecLoops32, ownSgemm = vec, own })
	SetSIMD(false)
	SetOwnSgemm(false)
	if vecLoops32 != nil || OwnSgemm() {
		t.Fatal("SetSIMD(false), SetOwnSgemm(false) left a fast path on")
	}
	SetSIMD(true)
	SetOwnSgemm(true)
	if vecLoops32 != cpuVecLoops32 || ownSgemm != cpuSgemm || OwnSgemm() != (cpuSgemm != nil) {
		t.Fatal("SetSIMD(true), SetOwnSgemm(true) did not restore the CPU's fast paths")
	}
}
