package nn_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
)

// TestShareBuffers plans a small network with a residual sum, an in-place
// ReLU, gorgonia's own gradient accumulation and kept gradients, runs it
// twice with and without sharing, and checks that sharing saves storage and
// changes no value.
func TestShareBuffers(t *testing.T) {
	build := func(share bool) (out []*G.Node, st nn.ShareStats, vm G.VM) {
		rng := rand.New(rand.NewPCG(5, 6))
		g := G.NewGraph()
		in := inputNodes(g, []*tensor.Dense{randTensor(rng, 2, 3, 6, 6), randTensor(rng, 3, 3, 3, 3), randTensor(rng, 3, 3, 3, 3)})
		x, w1, w2 := in[0], in[1], in[2]
		must := func(n *G.Node, err error) *G.Node {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		h := must(nn.ReLU(must(nn.Conv2D(x, w1, 1, 1))))
		h = must(nn.Conv2D(must(nn.ReLU(h)), w2, 1, 1))
		y := must(nn.ReLUInPlace(must(nn.Add(h, x)))) // x is read twice: gorgonia sums its gradients
		y = must(nn.ReLU(must(nn.Conv2D(y, w1, 1, 1))))
		cost := must(G.Sum(must(nn.GlobalAvgPool(y))))
		grads, err := G.Grad(cost, x, w1, w2)
		if err != nil {
			t.Fatal(err)
		}
		keep := append(G.Nodes{cost}, grads...)
		if share {
			if st, err = nn.ShareBuffers(g, keep...); err != nil {
				t.Fatal(err)
			}
		}
		return keep, st, G.NewTapeMachine(g)
	}
	plain, _, vm1 := build(false)
	shared, st, vm2 := build(true)
	defer vm1.Close()
	defer vm2.Close()
	if st.Buffers == 0 || st.Slots >= st.Buffers || st.After >= st.Before {
		t.Errorf("no sharing planned: %+v", st)
	}
	t.Logf("%d buffers in %d slots, %d -> %d bytes", st.Buffers, st.Slots, st.Before, st.After)
	for run := range 2 {
		for _, vm := range []G.VM{vm1, vm2} {
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				t.Fatal(err)
			}
		}
		if a, b := plain[0].Value().Data(), shared[0].Value().Data(); a != b {
			t.Errorf("run %d: cost %v with shared buffers, %v without", run, b, a)
		}
		for i := 1; i < len(plain); i++ {
			if d := maxAbsDiff(floats(t, plain[i].Value()), floats(t, shared[i].Value())); d != 0 {
				t.Errorf("run %d: kept value %d differs by %g with shared buffers", run, i, d)
			}
		}
	}
}

func TestShareBuffersErrors(t *testing.T) {
	g, other := G.NewGraph(), G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 2))
	y, err := nn.ReLU(x)
	if err != nil {
		t.Fatal(err)
	}
	z := G.NewTensor(other, tensor.Float64, 2, G.WithShape(2, 2))
	if _, err := nn.ShareBuffers(g, y, z); !errors.Is(err, nn.ErrArg) {
		t.Errorf("a kept node of another graph: err %v, want ErrArg", err)
	}
}
