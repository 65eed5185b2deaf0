package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBNKernels compares batch norm's assembly plane loops with the Go ones
// on every tail length, several planes with their own coefficients, and
// the values where the ReLU mask could disagree: NaN, infinities, signed
// zeros and affine values that round to zero in float32. normalize must
// match to the bit (the backward recomputes the forward's mask); sums may
// differ by their order; gradX by one rounding. Values past the planes must
// stay untouched.
func TestBNKernels(t *testing.T) {
	vec := vecOnly(t)
	rng := rand.New(rand.NewPCG(7, 8))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 0.5}
	// Per plane: center, scale, shift; the second has affine values far
	// below float32's smallest, the third positive float64 results that
	// round to 0.
	coeffs := []bnChannel{
		{center: 0.1, scale: 1.3, shift: -0.2, a: 0.7, b: -0.3, k: 0.01, sum1: 1, sum2: 2},
		{center: 0, scale: 1e-20, shift: 0, a: -1.5, b: 0.2, k: 0},
		{center: -0.5, scale: -2, shift: 1e-40, a: 0.1, b: 0, k: -3},
	}
	hws := []int{100, 576, 1031}
	for hw := range 34 {
		hws = append(hws, hw)
	}
	const guard = 3
	for _, hw := range hws {
		size := len(coeffs) * hw
		x, dy := make([]float32, size+guard), make([]float32, size+guard)
		for i := range x {
			x[i], dy[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			if i < size && rng.IntN(4) == 0 {
				x[i] = specials[rng.IntN(len(specials))]
			}
		}
		xs, dys := x[:size], dy[:size]
		for _, relu := range []bool{false, true} {
			type result struct {
				y, dx         []float32
				moments, sums []bnChannel
			}
			run := func() result {
				r := result{y: make([]float32, size+guard), dx: make([]float32, size+guard)}
				r.y[size], r.dx[size] = 42, 42
				r.moments = append([]bnChannel(nil), coeffs...)
				r.sums = append([]bnChannel(nil), coeffs...)
				normalizePlanes(r.y[:size], xs, hw, relu, coeffs)
				gradXPlanes(r.dx[:size], xs, dys, hw, relu, coeffs)
				momentsPlanes(xs, hw, r.moments)
				centredDotPlanes(xs, dys, hw, relu, r.sums)
				return r
			}
			vecLoops32 = nil
			want := run()
			vecLoops32 = vec
			got := run()
			if got.y[size] != 42 || got.dx[size] != 42 {
				t.Fatalf("hw=%d: wrote past the planes", hw)
			}
			for i := range size {
				if math.Float32bits(got.y[i]) != math.Float32bits(want.y[i]) && !(isNaN32(got.y[i]) && isNaN32(want.y[i])) {
					t.Fatalf("hw=%d relu=%v: normalize[%d] of %g = %g, want %g", hw, relu, i, xs[i], got.y[i], want.y[i])
				}
				if !close32(got.dx[i], want.dx[i]) {
					t.Fatalf("hw=%d relu=%v: gradX[%d] of %g = %g, want %g", hw, relu, i, xs[i], got.dx[i], want.dx[i])
				}
			}
			for j := range coeffs {
				for _, c := range []struct {
					name      string
					got, want float64
				}{
					{"moments sum1", got.moments[j].sum1, want.moments[j].sum1},
					{"moments sum2", got.moments[j].sum2, want.moments[j].sum2},
					{"centredDot sum1", got.sums[j].sum1, want.sums[j].sum1},
					{"centredDot sum2", got.sums[j].sum2, want.sums[j].sum2},
				} {
					if !close64(c.got, c.want) {
						t.Fatalf("hw=%d relu=%v plane %d: %s %g, want %g", hw, relu, j, c.name, c.got, c.want)
					}
				}
			}
		}
	}
}

// vecOnly skips t on a CPU without vector loops, else returns them and
// restores vecLoops32 when t ends (tests switch it off to run the Go loops).
func vecOnly(t *testing.T) *vecLoops {
	t.Helper()
	if vecLoops32 == nil {
		t.Skip("no vector loops on this CPU")
	}
	vec := vecLoops32
	t.Cleanup(func() { vecLoops32 = vec })
	return vec
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

// TestElementwiseVec compares the assembly addReLU and ReLU gradient with
// the Go loops, to the bit, on every tail length and on NaN, infinities and
// signed zeros; values past dst must stay untouched.
func TestElementwiseVec(t *testing.T) {
	vec := vecOnly(t)
	rng := rand.New(rand.NewPCG(9, 10))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-40}
	const guard = 3
	for _, n := range []int{0, 1, 7, 15, 16, 17, 31, 33, 100, 1001} {
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			if rng.IntN(3) == 0 {
				a[i] = specials[rng.IntN(len(specials))]
			}
			if rng.IntN(5) == 0 {
				b[i] = -a[i]
			}
		}
		for name, f := range map[string]func(dst []float32, src ...[]float32){"addReLU": addReLU[float32], "reluGrad": reluGrad32} {
			vecLoops32 = nil
			want := make([]float32, n+guard)
			f(want[:n], a, b)
			vecLoops32 = vec
			got := make([]float32, n+guard)
			got[n] = 42
			f(got[:n], a, b)
			if got[n] != 42 {
				t.Fatalf("%s n=%d: wrote past dst", name, n)
			}
			for i := range n {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(isNaN32(got[i]) && isNaN32(want[i])) {
					t.Fatalf("%s n=%d [%d] of %g, %g: %g, want %g", name, n, i, a[i], b[i], got[i], want[i])
				}
			}
		}
	}
}
