package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTransposeSum checks partials.finish's transposed sum of one to three
// parts (the third added into the second first) on shapes with and without
// partial tiles, through the AVX-512 tiles where the CPU has them and
// through the Go loop.
func TestTransposeSum(t *testing.T) {
	vec := vecLoops32
	defer func() { vecLoops32 = vec }()
	rng := rand.New(rand.NewPCG(11, 12))
	for _, sh := range [][2]int{{16, 16}, {32, 48}, {17, 33}, {5, 70}, {64, 9}, {1, 1}} {
		rows, cols := sh[0], sh[1]
		for ns := 1; ns <= 3; ns++ {
			for _, useVec := range []bool{false, true} {
				if useVec && vec == nil {
					continue
				}
				t.Run(fmt.Sprintf("%dx%d/%d/vec=%v", rows, cols, ns, useVec), func(t *testing.T) {
					srcs := make([][]float32, ns)
					for i := range srcs {
						srcs[i] = make([]float32, rows*cols)
						for j := range srcs[i] {
							srcs[i][j] = float32(rng.NormFloat64())
						}
					}
					want := make([]float32, rows*cols)
					for r := range rows {
						for c := range cols {
							v := srcs[0][r*cols+c]
							switch ns {
							case 2:
								v += srcs[1][r*cols+c]
							case 3:
								v += srcs[1][r*cols+c] + srcs[2][r*cols+c]
							}
							want[c*rows+r] = v
						}
					}
					vecLoops32 = nil
					if useVec {
						vecLoops32 = vec
					}
					got := make([]float32, rows*cols)
					p := &partials[float32]{dw: got, o: cols, k: rows, transposed: true, sums: srcs}
					p.finish()
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("[%d] = %g, want %g", i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}
