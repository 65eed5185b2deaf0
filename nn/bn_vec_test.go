package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBNKernels compares batch norm's assembly loops with the Go ones on
// every tail length and on the values where the ReLU mask could disagree:
// NaN, infinities, signed zeros and affine values that round to zero in
// float32. normalize must match to the bit (the backward recomputes the
// forward's mask); sums may differ by their order; gradX by one rounding.
// Values past a slice's length must stay untouched.
func TestBNKernels(t *testing.T) {
	if bnVec32 == nil {
		t.Skip("no vector loops on this CPU")
	}
	vec := bnVec32
	defer func() { bnVec32 = vec }()
	rng := rand.New(rand.NewPCG(7, 8))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 0.5}
	lengths := []int{100, 576, 1031}
	for n := range 34 {
		lengths = append(lengths, n)
	}
	params := []struct{ mean, scale, shift float64 }{
		{0.1, 1.3, -0.2},
		{0, 1e-20, 0},     // affine values far below float32's smallest
		{-0.5, -2, 1e-40}, // positive float64 results that round to 0
	}
	const guard = 3
	for _, n := range lengths {
		x, dy := make([]float32, n+guard), make([]float32, n+guard)
		for i := range x {
			x[i], dy[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			if i < n && rng.IntN(4) == 0 {
				x[i] = specials[rng.IntN(len(specials))]
			}
		}
		xs, dys := x[:n], dy[:n]
		for _, p := range params {
			for _, relu := range []bool{false, true} {
				bnVec32 = nil
				want := make([]float32, n+guard)
				normalize(want[:n], xs, p.scale, p.shift, relu)
				wdx := make([]float32, n+guard)
				gradXPlane(wdx[:n], xs, dys, 0.7, -0.3, 0.01, p.scale, p.shift, relu)
				w1, w2 := shiftedMoments(xs, p.mean)
				wdy, wdyx := centredDotReLU(xs, dys, p.mean, p.scale, p.shift, relu)

				bnVec32 = vec
				got := make([]float32, n+guard)
				got[n] = 42
				normalize(got[:n], xs, p.scale, p.shift, relu)
				gdx := make([]float32, n+guard)
				gdx[n] = 42
				gradXPlane(gdx[:n], xs, dys, 0.7, -0.3, 0.01, p.scale, p.shift, relu)
				g1, g2 := shiftedMoments(xs, p.mean)
				gdy, gdyx := centredDotReLU(xs, dys, p.mean, p.scale, p.shift, relu)

				if got[n] != 42 || gdx[n] != 42 {
					t.Fatalf("n=%d: wrote past the slice", n)
				}
				for i := range n {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(isNaN32(got[i]) && isNaN32(want[i])) {
						t.Fatalf("n=%d %+v relu=%v: normalize[%d] of %g = %g, want %g", n, p, relu, i, xs[i], got[i], want[i])
					}
					if !close32(gdx[i], wdx[i]) {
						t.Fatalf("n=%d %+v relu=%v: gradX[%d] of %g = %g, want %g", n, p, relu, i, xs[i], gdx[i], wdx[i])
					}
				}
				for _, c := range []struct {
					name      string
					got, want float64
				}{{"sum1", g1, w1}, {"sum2", g2, w2}, {"sumDy", gdy, wdy}, {"sumDyX", gdyx, wdyx}} {
					if !close64(c.got, c.want) {
						t.Fatalf("n=%d %+v relu=%v: %s %g, want %g", n, p, relu, c.name, c.got, c.want)
					}
				}
			}
		}
	}
}

func isNaN32(v float32) bool { return v != v }

func close32(a, b float32) bool {
	if isNaN32(a) || isNaN32(b) {
		return isNaN32(a) && isNaN32(b)
	}
	return a == b || math.Abs(float64(a-b)) <= 1e-6*max(math.Abs(float64(a)), math.Abs(float64(b)))
}

func close64(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b || math.Abs(a-b) <= 1e-12*max(1, math.Abs(a), math.Abs(b))
}
