package nn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	_ "github.com/supflow/supflow/internal/blasimpl"
)

// randTensor returns a float64 tensor of standard-normal values.
func randTensor(rng *rand.Rand, shape ...int) *tensor.Dense {
	v := make([]float64, tensor.Shape(shape).TotalSize())
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

// toF32 converts a float64 tensor to float32.
func toF32(t *tensor.Dense) *tensor.Dense {
	v := make([]float32, t.Shape().TotalSize())
	for i, x := range t.Float64s() {
		v[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(v))
}

// floats returns a float64 copy of a run's value.
func floats(t testing.TB, v G.Value) []float64 {
	t.Helper()
	d, ok := v.(*tensor.Dense)
	if !ok {
		t.Fatalf("value is %T", v)
	}
	switch d.Dtype() {
	case tensor.Float64:
		return append([]float64(nil), d.Float64s()[:d.Shape().TotalSize()]...)
	case tensor.Float32:
		out := make([]float64, d.Shape().TotalSize())
		for i, x := range d.Float32s()[:len(out)] {
			out[i] = float64(x)
		}
		return out
	}
	t.Fatalf("dtype %v", d.Dtype())
	return nil
}

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// builder adds the op under test to g over the given input nodes.
type builder func(in []*G.Node) (*G.Node, error)

// inputNodes binds each tensor to a named input node of g.
func inputNodes(g *G.ExprGraph, vals []*tensor.Dense) []*G.Node {
	nodes := make([]*G.Node, len(vals))
	for i, v := range vals {
		nodes[i] = G.NodeFromAny(g, v, G.WithName(string(rune('a'+i))))
	}
	return nodes
}

// forward runs build on the inputs once and returns the output values.
func forward(t *testing.T, build builder, vals ...*tensor.Dense) []float64 {
	t.Helper()
	g := G.NewGraph()
	out, err := build(inputNodes(g, vals))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("run: %v", err)
	}
	return floats(t, out.Value())
}

// gradCheck compares the symbolic gradient of cost = sum(out ⊙ R), R fixed
// and random, with respect to every float64 input against central finite
// differences, over every entry (or a random subset of large inputs).
func gradCheck(t *testing.T, build builder, vals ...*tensor.Dense) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	g := G.NewGraph()
	in := inputNodes(g, vals)
	out, err := build(in)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	r := G.NodeFromAny(g, randTensor(rng, out.Shape()...), G.WithName("r"))
	cost := G.Must(G.Sum(G.Must(G.HadamardProd(out, r))))
	grads, err := G.Grad(cost, in...)
	if err != nil {
		t.Fatalf("grad: %v", err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatalf("run: %v", err)
		}
		return cost.Value().Data().(float64)
	}
	run()
	analytic := make([][]float64, len(grads))
	for i, gn := range grads {
		analytic[i] = floats(t, gn.Value())
	}
	const h = 1e-6
	for i, v := range vals {
		x := v.Float64s()
		idx := rng.Perm(len(x))
		if len(idx) > 60 {
			idx = idx[:60]
		}
		for _, j := range idx {
			orig := x[j]
			x[j] = orig + h
			plus := run()
			x[j] = orig - h
			minus := run()
			x[j] = orig
			num := (plus - minus) / (2 * h)
			if got := analytic[i][j]; math.Abs(got-num) > 1e-6*(1+math.Abs(num)) {
				t.Errorf("input %d entry %d: symbolic gradient %.10g, finite difference %.10g", i, j, got, num)
			}
		}
	}
}
