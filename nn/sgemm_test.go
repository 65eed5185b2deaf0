package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSgemm checks the driver (packing, blocking, edge tiles, alpha, beta,
// transposes, strides) with the portable kernel and, on an AVX-512 CPU,
// the assembly one, against a float64 reference. Padding columns of c must
// stay untouched, and with beta 0 c must not be read (it holds NaN).
func TestSgemm(t *testing.T) {
	impls := map[string]kernels{"go": kernelsGo}
	if ownSgemm != nil {
		impls["asm"] = *ownSgemm
	}
	shapes := [][3]int{{1, 1, 1}, {5, 7, 3}, {12, 32, 1}, {13, 33, 17}, {24, 64, 256}, {200, 70, 300}, {3, 2100, 5}, {40, 9, 600}, {4, 40, 0}, {520, 40, 20}, {8, 32, 3}, {16, 40, 9}, {28, 33, 2}, {64, 64, 300}, {10, 32, 4}}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, kern := range impls {
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					for _, ab := range [][2]float32{{1, 0}, {-0.5, 1}, {2, 0.25}} {
						t.Run(fmt.Sprintf("%s/%dx%dx%d/ta=%t/tb=%t/alpha=%g/beta=%g", name, m, n, k, ta, tb, ab[0], ab[1]), func(t *testing.T) {
							checkSgemm(t, rng, kern, ta, tb, m, n, k, ab[0], ab[1])
						})
					}
				}
			}
		}
	}
}

func checkSgemm(t *testing.T, rng *rand.Rand, kern kernels, ta, tb bool, m, n, k int, alpha, beta float32) {
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+3, bc+1, n+2
	fill := func(rows, ld int) []float32 {
		v := make([]float32, rows*ld)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
	a, b, c := fill(ar, lda), fill(br, ldb), fill(m, ldc)
	if beta == 0 { // BLAS semantics: c is not read
		for i := range m {
			for j := range n {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	at := func(i, p int) float64 {
		if ta {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if tb {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	want := make([]float64, len(c))
	for i := range m {
		for j := range ldc {
			if j >= n {
				want[i*ldc+j] = float64(c[i*ldc+j])
				continue
			}
			var s float64
			for p := range k {
				s += at(i, p) * bt(p, j)
			}
			want[i*ldc+j] = float64(alpha) * s
			if beta != 0 {
				want[i*ldc+j] += float64(beta) * float64(c[i*ldc+j])
			}
		}
	}
	sgemmWith(kern, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	tol := 1e-5 * float64(k+1) * float64(max(1, math.Abs(float64(alpha))))
	for i, w := range want {
		if d := math.Abs(float64(c[i]) - w); d > tol || math.IsNaN(float64(c[i])) {
			t.Fatalf("c[%d][%d] = %v, want %v (|diff| %.3g > %.3g)", i/ldc, i%ldc, c[i], w, d, tol)
		}
	}
}

// TestPanelHeight: every multiple of 4 from 8 on splits into full panels.
func TestPanelHeight(t *testing.T) {
	for m := 8; m <= 2*mc; m += 4 {
		for left := m; left > 0; {
			h := panelHeight(left)
			if h > left {
				t.Fatalf("m=%d: edge panel of height %d with %d rows left", m, h, left)
			}
			left -= h
		}
	}
}
