package nn_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
)

// naiveConv is the defining loop of PyTorch's conv2d (no bias).
func naiveConv(x, w *tensor.Dense, stride, pad int) []float64 {
	xs, ws := x.Shape(), w.Shape()
	n, c, h, wd := xs[0], xs[1], xs[2], xs[3]
	o, kh, kw := ws[0], ws[2], ws[3]
	ho, wo := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	xv, wv := x.Float64s(), w.Float64s()
	y := make([]float64, n*o*ho*wo)
	for b := 0; b < n; b++ {
		for oc := 0; oc < o; oc++ {
			for i := 0; i < ho; i++ {
				for j := 0; j < wo; j++ {
					var s float64
					for ic := 0; ic < c; ic++ {
						for u := 0; u < kh; u++ {
							for v := 0; v < kw; v++ {
								r, q := i*stride+u-pad, j*stride+v-pad
								if r < 0 || r >= h || q < 0 || q >= wd {
									continue
								}
								s += wv[((oc*c+ic)*kh+u)*kw+v] * xv[((b*c+ic)*h+r)*wd+q]
							}
						}
					}
					y[((b*o+oc)*ho+i)*wo+j] = s
				}
			}
		}
	}
	return y
}

var convCases = []struct {
	x, w        []int
	stride, pad int
}{
	{x: []int{2, 3, 5, 5}, w: []int{4, 3, 3, 3}, stride: 1, pad: 1},
	{x: []int{2, 3, 6, 7}, w: []int{4, 3, 3, 3}, stride: 2, pad: 1},
	{x: []int{2, 3, 5, 5}, w: []int{2, 3, 3, 3}, stride: 1, pad: 0},
	{x: []int{2, 4, 4, 5}, w: []int{3, 4, 1, 1}, stride: 1, pad: 0},
	{x: []int{2, 4, 5, 5}, w: []int{3, 4, 1, 1}, stride: 2, pad: 0},
	{x: []int{2, 3, 9, 8}, w: []int{2, 3, 7, 7}, stride: 2, pad: 3},
	{x: []int{1, 2, 10, 11}, w: []int{2, 2, 3, 3}, stride: 3, pad: 1},
	{x: []int{1, 2, 4, 6}, w: []int{3, 2, 3, 2}, stride: 1, pad: 1},
	{x: []int{1, 1, 1, 1}, w: []int{2, 1, 5, 5}, stride: 1, pad: 2},
	// Stride 1 without padding on more than 64 positions.
	{x: []int{2, 2, 12, 12}, w: []int{2, 2, 3, 3}, stride: 1, pad: 0},
	// "Same" padding, unfolded with one copy per kernel offset: kernels
	// wider than the image, and 7x7 on more than 256 positions.
	{x: []int{2, 2, 9, 3}, w: []int{3, 2, 5, 5}, stride: 1, pad: 2},
	{x: []int{1, 2, 17, 19}, w: []int{2, 2, 7, 7}, stride: 1, pad: 3},
	// 64 positions per image: chunks of 4 images, then a single one.
	{x: []int{5, 2, 8, 8}, w: []int{3, 2, 3, 3}, stride: 1, pad: 1},
	// 256 positions per image: one image per GEMM, 1x1 without unfolding.
	{x: []int{2, 3, 16, 16}, w: []int{4, 3, 1, 1}, stride: 1, pad: 0},
	{x: []int{2, 3, 16, 16}, w: []int{4, 3, 3, 3}, stride: 1, pad: 1},
	// More than 256 positions: the input gradient goes in blocks of output
	// rows (10 rows of 25, then 3; 14 rows of 18, then 6).
	{x: []int{1, 2, 23, 25}, w: []int{3, 2, 3, 3}, stride: 1, pad: 1},
	{x: []int{1, 2, 40, 36}, w: []int{2, 2, 3, 3}, stride: 2, pad: 1},
}

func convName(x, w []int, stride, pad int) string {
	return fmt.Sprintf("x%v_w%v_s%d_p%d", x, w, stride, pad)
}

func convBuilder(stride, pad int) builder {
	return func(in []*G.Node) (*G.Node, error) { return nn.Conv2D(in[0], in[1], stride, pad) }
}

func TestConv2DForward(t *testing.T) {
	for _, tc := range convCases {
		t.Run(convName(tc.x, tc.w, tc.stride, tc.pad), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			x, w := randTensor(rng, tc.x...), randTensor(rng, tc.w...)
			want := naiveConv(x, w, tc.stride, tc.pad)
			got := forward(t, convBuilder(tc.stride, tc.pad), x, w)
			if d := maxAbsDiff(got, want); d > 1e-12 {
				t.Errorf("float64: max abs diff %g", d)
			}
			got32 := forward(t, convBuilder(tc.stride, tc.pad), toF32(x), toF32(w))
			if d := maxAbsDiff(got32, want); d > 1e-4 {
				t.Errorf("float32: max abs diff %g", d)
			}
		})
	}
}

func TestConv2DGradient(t *testing.T) {
	for _, tc := range convCases {
		t.Run(convName(tc.x, tc.w, tc.stride, tc.pad), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			gradCheck(t, convBuilder(tc.stride, tc.pad), randTensor(rng, tc.x...), randTensor(rng, tc.w...))
		})
	}
}

func TestConv2DErrors(t *testing.T) {
	tests := []struct {
		name        string
		x, w        []int
		stride, pad int
		want        error
	}{
		{name: "zero stride", x: []int{1, 1, 3, 3}, w: []int{1, 1, 1, 1}, stride: 0, want: nn.ErrArg},
		{name: "negative pad", x: []int{1, 1, 3, 3}, w: []int{1, 1, 1, 1}, stride: 1, pad: -1, want: nn.ErrArg},
		{name: "channel mismatch", x: []int{1, 2, 3, 3}, w: []int{1, 3, 1, 1}, stride: 1, want: nn.ErrShape},
		{name: "kernel too large", x: []int{1, 1, 2, 2}, w: []int{1, 1, 3, 3}, stride: 1, want: nn.ErrShape},
		{name: "3-D input", x: []int{1, 3, 3}, w: []int{1, 1, 1, 1}, stride: 1, want: nn.ErrShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := G.NewGraph()
			x := G.NewTensor(g, tensor.Float64, len(tc.x), G.WithShape(tc.x...))
			w := G.NewTensor(g, tensor.Float64, len(tc.w), G.WithShape(tc.w...))
			if _, err := nn.Conv2D(x, w, tc.stride, tc.pad); !errors.Is(err, tc.want) {
				t.Errorf("Conv2D error %v, want %v", err, tc.want)
			}
		})
	}
}
