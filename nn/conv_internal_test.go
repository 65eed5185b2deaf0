package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvGradXFlipped checks the input gradient taken as a forward
// convolution with flipped filters against the unfolded-and-folded one, on
// geometries large enough to take the flipped path.
func TestConvGradXFlipped(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct{ n, c, h, w, o, k, pad int }{
		{2, 3, 24, 24, 4, 3, 1}, // "same" 3x3
		{2, 2, 26, 20, 3, 5, 2}, // "same" 5x5, not square
		{2, 2, 26, 26, 3, 3, 0}, // no padding: the flipped pad is 2
		{8, 4, 12, 12, 5, 3, 1}, // chunks of two images per GEMM
		{1, 2, 40, 36, 2, 7, 3}, // 7x7 on more than 256 positions per image
	} {
		g, err := newConvGeom([]int{tc.n, tc.c, tc.h, tc.w}, []int{tc.o, tc.c, tc.k, tc.k}, 1, tc.pad)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := g.flipped(); !ok || g.n*g.ho*g.wo < flipMinPositions {
			t.Fatalf("%+v does not take the flipped path", tc)
		}
		w, dy := make([]float64, tc.o*tc.c*tc.k*tc.k), make([]float64, g.n*g.o*g.ho*g.wo)
		for _, s := range [][]float64{w, dy} {
			for i := range s {
				s[i] = rng.NormFloat64()
			}
		}
		got, want := make([]float64, tc.n*tc.c*tc.h*tc.w), make([]float64, tc.n*tc.c*tc.h*tc.w)
		convGradX(&g, w, dy, got)
		convGradXFold(&g, w, dy, want)
		var worst float64
		for i := range want {
			worst = max(worst, math.Abs(got[i]-want[i]))
		}
		if worst > 1e-12 {
			t.Errorf("%+v: flipped differs from folded by %g", tc, worst)
		}
	}
}
