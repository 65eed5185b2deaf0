package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestReductions compares the unrolled sums with plain loops on lengths
// that exercise the four-way body and every tail.
func TestReductions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := range 11 {
		x, dy := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], dy[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		const k, mean = 0.25, -0.5
		var s, s1, s2, sdy, sdyx float64
		for i, v := range x {
			d := float64(v) - k
			s += float64(v)
			s1 += d
			s2 += d * d
			sdy += float64(dy[i])
			sdyx += float64(dy[i]) * (float64(v) - mean)
		}
		got1, got2 := shiftedMoments(x, k)
		gotDy, gotDyX := centredDot(x, dy, mean)
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"sum", sum(x), s}, {"shifted sum", got1, s1}, {"shifted squares", got2, s2}, {"sum dy", gotDy, sdy}, {"sum dy*(x-mean)", gotDyX, sdyx}} {
			if math.Abs(c.got-c.want) > 1e-12 {
				t.Errorf("n=%d %s: %g, want %g", n, c.name, c.got, c.want)
			}
		}
	}
}

// TestBatchNormVarianceFarFromZero checks the one-pass statistics on
// float32 values whose mean is 10^4 times their spread, where E[x^2]-E[x]^2
// without the shift would keep no correct digit.
func TestBatchNormVarianceFarFromZero(t *testing.T) {
	const n, c, hw = 4, 2, 50
	rng := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, n*c*hw)
	for i := range x {
		x[i] = float32(1e4 + rng.NormFloat64())
	}
	st, sv := NewBNState(c), &bnSaved{mean: make([]float64, c), invStd: make([]float64, c), training: true}
	y := make([]float32, len(x))
	bnForward(st, sv, n, c, hw, x, []float32{1, 1}, []float32{0, 0}, y)
	for ch := range c {
		var mean, ss float64
		for i := range n {
			for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
				mean += float64(v)
			}
		}
		mean /= n * hw
		for i := range n {
			for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
				ss += (float64(v) - mean) * (float64(v) - mean)
			}
		}
		want := 1 / math.Sqrt(ss/(n*hw)+st.Eps)
		if got := sv.invStd[ch]; math.Abs(got-want) > 1e-9*want || math.Abs(sv.mean[ch]-mean) > 1e-9 {
			t.Errorf("channel %d: mean %v invStd %v, want %v and %v", ch, sv.mean[ch], got, mean, want)
		}
	}
}
