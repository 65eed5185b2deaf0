package nn_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
)

func naiveMaxPool(x *tensor.Dense, k, s, p int) []float64 {
	sh := x.Shape()
	n, c, h, w := sh[0], sh[1], sh[2], sh[3]
	ho, wo := (h+2*p-k)/s+1, (w+2*p-k)/s+1
	xv := x.Float64s()
	var y []float64
	for b := 0; b < n*c; b++ {
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				m := math.Inf(-1)
				for u := 0; u < k; u++ {
					for v := 0; v < k; v++ {
						r, q := i*s+u-p, j*s+v-p
						if r >= 0 && r < h && q >= 0 && q < w {
							m = max(m, xv[(b*h+r)*w+q])
						}
					}
				}
				y = append(y, m)
			}
		}
	}
	return y
}

func TestForward(t *testing.T) {
	tests := []struct {
		name   string
		shapes [][]int
		build  builder
		want   func(in []*tensor.Dense) []float64
	}{
		{
			name:   "relu",
			shapes: [][]int{{2, 3, 2, 2}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.ReLU(in[0]) },
			want: func(in []*tensor.Dense) []float64 {
				var y []float64
				for _, v := range in[0].Float64s() {
					y = append(y, max(v, 0))
				}
				return y
			},
		},
		{
			name:   "add relu",
			shapes: [][]int{{2, 3, 2, 2}, {2, 3, 2, 2}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.AddReLU(in[0], in[1]) },
			want: func(in []*tensor.Dense) []float64 {
				var y []float64
				for i, v := range in[0].Float64s() {
					y = append(y, max(v+in[1].Float64s()[i], 0))
				}
				return y
			},
		},
		{
			name:   "add",
			shapes: [][]int{{2, 3, 2, 2}, {2, 3, 2, 2}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.Add(in[0], in[1]) },
			want: func(in []*tensor.Dense) []float64 {
				var y []float64
				for i, v := range in[0].Float64s() {
					y = append(y, v+in[1].Float64s()[i])
				}
				return y
			},
		},
		{
			name:   "global avg pool",
			shapes: [][]int{{2, 3, 2, 3}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.GlobalAvgPool(in[0]) },
			want: func(in []*tensor.Dense) []float64 {
				y := make([]float64, 6)
				for i, v := range in[0].Float64s() {
					y[i/6] += v / 6
				}
				return y
			},
		},
		{
			name:   "max pool 3/2/1",
			shapes: [][]int{{2, 2, 7, 6}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.MaxPool2D(in[0], 3, 2, 1) },
			want:   func(in []*tensor.Dense) []float64 { return naiveMaxPool(in[0], 3, 2, 1) },
		},
		{
			name:   "max pool 2/2/0",
			shapes: [][]int{{1, 2, 5, 4}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.MaxPool2D(in[0], 2, 2, 0) },
			want:   func(in []*tensor.Dense) []float64 { return naiveMaxPool(in[0], 2, 2, 0) },
		},
		{
			name:   "linear",
			shapes: [][]int{{3, 4}, {2, 4}, {2}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.Linear(in[0], in[1], in[2]) },
			want: func(in []*tensor.Dense) []float64 {
				x, w, b := in[0].Float64s(), in[1].Float64s(), in[2].Float64s()
				y := make([]float64, 6)
				for i := range 3 {
					for o := range 2 {
						y[i*2+o] = b[o]
						for k := range 4 {
							y[i*2+o] += x[i*4+k] * w[o*4+k]
						}
					}
				}
				return y
			},
		},
		{
			name:   "l2 normalize",
			shapes: [][]int{{3, 5}},
			build:  func(in []*G.Node) (*G.Node, error) { return nn.L2Normalize(in[0]) },
			want: func(in []*tensor.Dense) []float64 {
				x := in[0].Float64s()
				y := make([]float64, len(x))
				for r := 0; r < 3; r++ {
					var s float64
					for _, v := range x[r*5 : r*5+5] {
						s += v * v
					}
					for j := range 5 {
						y[r*5+j] = x[r*5+j] / math.Sqrt(s)
					}
				}
				return y
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(13, 14))
			in := make([]*tensor.Dense, len(tc.shapes))
			in32 := make([]*tensor.Dense, len(tc.shapes))
			for i, s := range tc.shapes {
				in[i] = randTensor(rng, s...)
				in32[i] = toF32(in[i])
			}
			want := tc.want(in)
			if d := maxAbsDiff(forward(t, tc.build, in...), want); d > 1e-12 {
				t.Errorf("float64: max abs diff %g", d)
			}
			if d := maxAbsDiff(forward(t, tc.build, in32...), want); d > 1e-5 {
				t.Errorf("float32: max abs diff %g", d)
			}
		})
	}
}

func TestGradient(t *testing.T) {
	tests := []struct {
		name   string
		shapes [][]int
		build  builder
	}{
		{"relu", [][]int{{2, 3, 3, 2}}, func(in []*G.Node) (*G.Node, error) { return nn.ReLU(in[0]) }},
		{"relu 2-D", [][]int{{3, 4}}, func(in []*G.Node) (*G.Node, error) { return nn.ReLU(in[0]) }},
		{"add", [][]int{{2, 3, 2, 2}, {2, 3, 2, 2}}, func(in []*G.Node) (*G.Node, error) { return nn.Add(in[0], in[1]) }},
		{"add relu", [][]int{{2, 3, 2, 2}, {2, 3, 2, 2}}, func(in []*G.Node) (*G.Node, error) { return nn.AddReLU(in[0], in[1]) }},
		{"relu in place after add", [][]int{{2, 3, 3, 2}, {2, 3, 3, 2}}, func(in []*G.Node) (*G.Node, error) {
			sum, err := nn.Add(in[0], in[1])
			if err != nil {
				return nil, err
			}
			return nn.ReLUInPlace(sum)
		}},
		{"add same node", [][]int{{2, 3}}, func(in []*G.Node) (*G.Node, error) { return nn.Add(in[0], in[0]) }},
		{"global avg pool", [][]int{{2, 3, 3, 2}}, func(in []*G.Node) (*G.Node, error) { return nn.GlobalAvgPool(in[0]) }},
		{"max pool 3/2/1", [][]int{{2, 2, 7, 6}}, func(in []*G.Node) (*G.Node, error) { return nn.MaxPool2D(in[0], 3, 2, 1) }},
		{"max pool 3/1/1", [][]int{{1, 2, 4, 4}}, func(in []*G.Node) (*G.Node, error) { return nn.MaxPool2D(in[0], 3, 1, 1) }},
		{"linear", [][]int{{3, 4}, {5, 4}, {5}}, func(in []*G.Node) (*G.Node, error) { return nn.Linear(in[0], in[1], in[2]) }},
		{"l2 normalize", [][]int{{4, 6}}, func(in []*G.Node) (*G.Node, error) { return nn.L2Normalize(in[0]) }},
		{"block", [][]int{{2, 3, 6, 6}, {4, 3, 3, 3}, {4}, {4}, {4, 3, 1, 1}, {5, 4}, {5}}, smallBlock},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(15, 16))
			in := make([]*tensor.Dense, len(tc.shapes))
			for i, s := range tc.shapes {
				in[i] = randTensor(rng, s...)
			}
			gradCheck(t, tc.build, in...)
		})
	}
}

// smallBlock chains every op the way a residual block and head do, so that
// gradients summed by gorgonia over several consumers are checked too:
// normalize(linear(pool(relu(bn(conv3x3(x)) + conv1x1(x))))).
func smallBlock(in []*G.Node) (*G.Node, error) {
	x, w, gamma, beta, ws, lw, lb := in[0], in[1], in[2], in[3], in[4], in[5], in[6]
	c, err := nn.Conv2D(x, w, 2, 1)
	if err != nil {
		return nil, err
	}
	b, err := nn.BatchNorm(c, gamma, beta, nn.NewBNState(4))
	if err != nil {
		return nil, err
	}
	s, err := nn.Conv2D(x, ws, 2, 0)
	if err != nil {
		return nil, err
	}
	sum, err := nn.Add(b, s)
	if err != nil {
		return nil, err
	}
	r, err := nn.ReLU(sum)
	if err != nil {
		return nil, err
	}
	p, err := nn.GlobalAvgPool(r)
	if err != nil {
		return nil, err
	}
	h, err := nn.Linear(p, lw, lb)
	if err != nil {
		return nil, err
	}
	return nn.L2Normalize(h)
}

func TestL2NormalizeZeroRow(t *testing.T) {
	x := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{0, 0, 3, 4}))
	got := forward(t, func(in []*G.Node) (*G.Node, error) { return nn.L2Normalize(in[0]) }, x)
	if want := []float64{0, 0, 0.6, 0.8}; maxAbsDiff(got, want) > 1e-15 {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestShapeErrors(t *testing.T) {
	g := G.NewGraph()
	node := func(s ...int) *G.Node { return G.NewTensor(g, tensor.Float64, len(s), G.WithShape(s...)) }
	tests := []struct {
		name  string
		build func() (*G.Node, error)
		want  error
	}{
		{"add shapes", func() (*G.Node, error) { return nn.Add(node(2, 3), node(3, 2)) }, nn.ErrShape},
		{"pool 2-D", func() (*G.Node, error) { return nn.GlobalAvgPool(node(2, 3)) }, nn.ErrShape},
		{"max pool pad", func() (*G.Node, error) { return nn.MaxPool2D(node(1, 1, 4, 4), 3, 2, 2) }, nn.ErrArg},
		{"max pool too small", func() (*G.Node, error) { return nn.MaxPool2D(node(1, 1, 2, 2), 5, 1, 1) }, nn.ErrShape},
		{"linear in", func() (*G.Node, error) { return nn.Linear(node(2, 3), node(4, 2), node(4)) }, nn.ErrShape},
		{"linear bias", func() (*G.Node, error) { return nn.Linear(node(2, 3), node(4, 3), node(3)) }, nn.ErrShape},
		{"normalize 4-D", func() (*G.Node, error) { return nn.L2Normalize(node(1, 2, 3, 4)) }, nn.ErrShape},
		{"nil relu", func() (*G.Node, error) { return nn.ReLU(nil) }, nn.ErrArg},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.build(); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestPersistentBuffers checks that repeated runs return the same output
// tensor (no per-step allocation) with fresh values.
func TestPersistentBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	xv := randTensor(rng, 2, 3, 4, 4)
	g := G.NewGraph()
	in := inputNodes(g, []*tensor.Dense{xv, randTensor(rng, 5, 3, 3, 3)})
	y, err := nn.Conv2D(in[0], in[1], 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	first := y.Value()
	before := floats(t, first)
	xv.Float64s()[0] += 1
	m.Reset()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if y.Value() != first {
		t.Errorf("second run returned a new tensor")
	}
	if maxAbsDiff(before, floats(t, y.Value())) == 0 {
		t.Errorf("second run did not recompute the output")
	}
}
