package nn_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
)

// naiveBN normalises x [N,C,...] with per-channel statistics; it returns y
// and the biased batch variance.
func naiveBN(x, gamma, beta *tensor.Dense, mean, variance []float64, eps float64) []float64 {
	s := x.Shape()
	n, c := s[0], s[1]
	hw := s.TotalSize() / (n * c)
	xv, y := x.Float64s(), make([]float64, s.TotalSize())
	for i := 0; i < n; i++ {
		for ch := 0; ch < c; ch++ {
			for j := 0; j < hw; j++ {
				k := (i*c+ch)*hw + j
				y[k] = (xv[k]-mean[ch])/math.Sqrt(variance[ch]+eps)*gamma.Float64s()[ch] + beta.Float64s()[ch]
			}
		}
	}
	return y
}

// batchStats returns the per-channel mean and biased variance of x.
func batchStats(x *tensor.Dense) (mean, variance []float64) {
	s := x.Shape()
	n, c := s[0], s[1]
	hw := s.TotalSize() / (n * c)
	mean, variance = make([]float64, c), make([]float64, c)
	cnt := float64(n * hw)
	for ch := 0; ch < c; ch++ {
		for i := 0; i < n; i++ {
			for j := 0; j < hw; j++ {
				mean[ch] += x.Float64s()[(i*c+ch)*hw+j] / cnt
			}
		}
		for i := 0; i < n; i++ {
			for j := 0; j < hw; j++ {
				d := x.Float64s()[(i*c+ch)*hw+j] - mean[ch]
				variance[ch] += d * d / cnt
			}
		}
	}
	return mean, variance
}

func bnBuilder(st *nn.BNState) builder {
	return func(in []*G.Node) (*G.Node, error) { return nn.BatchNorm(in[0], in[1], in[2], st) }
}

var bnShapes = [][]int{{3, 4, 3, 2}, {2, 2, 1, 1}, {5, 3}}

func TestBatchNormTrainForward(t *testing.T) {
	for _, shape := range bnShapes {
		t.Run(convName(shape, nil, 0, 0), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			c := shape[1]
			x, gamma, beta := randTensor(rng, shape...), randTensor(rng, c), randTensor(rng, c)
			st := nn.NewBNState(c)
			copy(st.RunningMean, gamma.Float64s())
			got := forward(t, bnBuilder(st), x, gamma, beta)
			mean, variance := batchStats(x)
			if d := maxAbsDiff(got, naiveBN(x, gamma, beta, mean, variance, 1e-5)); d > 1e-12 {
				t.Errorf("output: max abs diff %g", d)
			}
			cnt := float64(tensor.Shape(shape).TotalSize() / c)
			for ch := 0; ch < c; ch++ {
				wantMean := 0.9*gamma.Float64s()[ch] + 0.1*mean[ch]
				wantVar := 0.9 + 0.1*variance[ch]*cnt/(cnt-1)
				if math.Abs(st.RunningMean[ch]-wantMean) > 1e-14 || math.Abs(st.RunningVar[ch]-wantVar) > 1e-14 {
					t.Errorf("channel %d: running stats %g, %g, want %g, %g", ch, st.RunningMean[ch], st.RunningVar[ch], wantMean, wantVar)
				}
			}
			if st.NumBatchesTracked != 1 {
				t.Errorf("NumBatchesTracked = %d, want 1", st.NumBatchesTracked)
			}
			st32 := nn.NewBNState(c)
			got32 := forward(t, bnBuilder(st32), toF32(x), toF32(gamma), toF32(beta))
			if d := maxAbsDiff(got32, got); d > 1e-4 {
				t.Errorf("float32: max abs diff %g", d)
			}
		})
	}
}

func TestBatchNormEvalForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x, gamma, beta := randTensor(rng, 2, 3, 2, 2), randTensor(rng, 3), randTensor(rng, 3)
	st := nn.NewBNState(3)
	st.Training = false
	st.RunningMean = []float64{0.5, -1, 2}
	st.RunningVar = []float64{0.25, 2, 3}
	got := forward(t, bnBuilder(st), x, gamma, beta)
	want := naiveBN(x, gamma, beta, st.RunningMean, st.RunningVar, 1e-5)
	if d := maxAbsDiff(got, want); d > 1e-12 {
		t.Errorf("max abs diff %g", d)
	}
	if st.NumBatchesTracked != 0 || st.RunningMean[0] != 0.5 || st.RunningVar[2] != 3 {
		t.Errorf("eval run changed the state: %+v", st)
	}
}

// TestBatchNormModeSwitch runs one graph train -> eval -> train and checks
// that the running statistics carry over every switch.
func TestBatchNormModeSwitch(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	x, gamma, beta := randTensor(rng, 4, 2, 3, 3), randTensor(rng, 2), randTensor(rng, 2)
	st := nn.NewBNState(2)
	g := G.NewGraph()
	out, err := bnBuilder(st)(inputNodes(g, []*tensor.Dense{x, gamma, beta}))
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() []float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return floats(t, out.Value())
	}
	run()
	afterTrain := append([]float64(nil), st.RunningMean...)
	afterTrainVar := append([]float64(nil), st.RunningVar...)

	st.Training = false
	evalOut := run()
	if d := maxAbsDiff(evalOut, naiveBN(x, gamma, beta, afterTrain, afterTrainVar, 1e-5)); d > 1e-12 {
		t.Errorf("eval output uses wrong statistics: max abs diff %g", d)
	}
	if maxAbsDiff(st.RunningMean, afterTrain) != 0 || maxAbsDiff(st.RunningVar, afterTrainVar) != 0 {
		t.Errorf("eval run changed running statistics")
	}

	st.Training = true
	run()
	mean, variance := batchStats(x)
	cnt := float64(4 * 3 * 3)
	for ch := range 2 {
		wantMean := 0.9*afterTrain[ch] + 0.1*mean[ch]
		wantVar := 0.9*afterTrainVar[ch] + 0.1*variance[ch]*cnt/(cnt-1)
		if math.Abs(st.RunningMean[ch]-wantMean) > 1e-14 || math.Abs(st.RunningVar[ch]-wantVar) > 1e-14 {
			t.Errorf("channel %d after train->eval->train: %g, %g, want %g, %g", ch, st.RunningMean[ch], st.RunningVar[ch], wantMean, wantVar)
		}
	}
	if st.NumBatchesTracked != 2 {
		t.Errorf("NumBatchesTracked = %d, want 2", st.NumBatchesTracked)
	}
}

func TestBatchNormGradient(t *testing.T) {
	for _, training := range []bool{true, false} {
		for _, shape := range bnShapes {
			name := "eval"
			if training {
				name = "train"
			}
			t.Run(name+convName(shape, nil, 0, 0), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(11, 12))
				c := shape[1]
				st := nn.NewBNState(c)
				st.Training = training
				for i := range st.RunningVar {
					st.RunningMean[i], st.RunningVar[i] = rng.NormFloat64(), 0.5+rng.Float64()
				}
				gradCheck(t, bnBuilder(st), randTensor(rng, shape...), randTensor(rng, c), randTensor(rng, c))
			})
		}
	}
}

func TestBatchNormErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 2, 2))
	v3 := G.NewTensor(g, tensor.Float64, 1, G.WithShape(3))
	v2 := G.NewTensor(g, tensor.Float64, 1, G.WithShape(2))
	bad := nn.NewBNState(3)
	bad.Eps = 0
	tests := []struct {
		name        string
		gamma, beta *G.Node
		state       *nn.BNState
		want        error
	}{
		{name: "nil state", gamma: v3, beta: v3, want: nn.ErrArg},
		{name: "state channels", gamma: v2, beta: v2, state: nn.NewBNState(2), want: nn.ErrShape},
		{name: "gamma shape", gamma: v2, beta: v3, state: nn.NewBNState(3), want: nn.ErrShape},
		{name: "zero eps", gamma: v3, beta: v3, state: bad, want: nn.ErrArg},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := nn.BatchNorm(x, tc.gamma, tc.beta, tc.state); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestBatchNormSingleValue checks that training on one value per channel
// (undefined unbiased variance) is an error, as in PyTorch.
func TestBatchNormSingleValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	g := G.NewGraph()
	in := inputNodes(g, []*tensor.Dense{randTensor(rng, 1, 2, 1, 1), randTensor(rng, 2), randTensor(rng, 2)})
	if _, err := nn.BatchNorm(in[0], in[1], in[2], nn.NewBNState(2)); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := nn.RunError(m.RunAll()); !errors.Is(err, nn.ErrShape) {
		t.Errorf("run error %v, want %v", err, nn.ErrShape)
	}
}

// TestBatchNormReLUMatchesPair checks the fused op against BatchNorm
// followed by ReLU: the same output, gradients and running statistics, in
// training and eval mode, in float64 and float32.
func TestBatchNormReLUMatchesPair(t *testing.T) {
	run := func(t *testing.T, fused, training bool, vals []*tensor.Dense) [][]float64 {
		st := nn.NewBNState(vals[0].Shape()[1])
		st.Training = training
		g := G.NewGraph()
		in := inputNodes(g, vals)
		var out *G.Node
		var err error
		if fused {
			out, err = nn.BatchNormReLU(in[0], in[1], in[2], st)
		} else if out, err = nn.BatchNorm(in[0], in[1], in[2], st); err == nil {
			out, err = nn.ReLU(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 1))
		r := randTensor(rng, out.Shape()...)
		if vals[0].Dtype() == tensor.Float32 {
			r = toF32(r)
		}
		cost := G.Must(G.Sum(G.Must(G.HadamardProd(out, G.NodeFromAny(g, r)))))
		grads, err := G.Grad(cost, in...)
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		res := [][]float64{floats(t, out.Value()), append(append([]float64(nil), st.RunningMean...), st.RunningVar...)}
		for _, gn := range grads {
			res = append(res, floats(t, gn.Value()))
		}
		return res
	}
	for _, training := range []bool{true, false} {
		for _, f32 := range []bool{false, true} {
			for _, shape := range bnShapes {
				t.Run(fmt.Sprintf("train=%v f32=%v %v", training, f32, shape), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(13, 14))
					c := shape[1]
					vals := []*tensor.Dense{randTensor(rng, shape...), randTensor(rng, c), randTensor(rng, c)}
					if f32 {
						for i := range vals {
							vals[i] = toF32(vals[i])
						}
					}
					want, got := run(t, false, training, vals), run(t, true, training, vals)
					for i, name := range []string{"output", "running stats", "dx", "dgamma", "dbeta"} {
						if d := maxAbsDiff(got[i], want[i]); d > 1e-12 {
							t.Errorf("%s differs by %g", name, d)
						}
					}
				})
			}
		}
	}
}
