package transform

import (
	"math"
	"testing"
)

// TestAxpy holds axpy, vectorised where the CPU allows, to the scalar loop
// for lengths around the vector width and offsets that misalign both slices.
func TestAxpy(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for off := 0; off < 3; off++ {
			row := make([]byte, n+off)
			got := make([]float32, n+off)
			for i := range row {
				row[i] = byte(i*37 + 11)
				got[i] = float32(i) / 7
			}
			want := append([]float32(nil), got...)
			const w = 0.3 / 255
			axpy(got[off:], row[off:], w)
			axpyGeneric(want[off:], row[off:], w)
			for i := range want {
				// Fused multiply-add rounds once where the loop rounds twice.
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-6 {
					t.Fatalf("n=%d off=%d: acc[%d] = %v, want %v", n, off, i, got[i], want[i])
				}
			}
		}
	}
}
