package model

import (
	"errors"
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
)

// Graph is the network unrolled for one input shape. Run it with a
// gorgonia tape machine after binding a batch to Input (gorgonia.Let); add a
// loss on Output and call gorgonia.Grad(loss, Params...) to train. Values
// read from its nodes after a run are overwritten by the next run.
type Graph struct {
	G *G.ExprGraph
	// Input is the [N,C,H,W] image batch, in the model's dtype.
	Input *G.Node
	// Encoder is the [N,d] pooled encoder output.
	Encoder *G.Node
	// Head is the [N,FeatDim] projection before normalisation.
	Head *G.Node
	// Output is Head with each row L2-normalised.
	Output *G.Node
	// Params holds one node per parameter, in Model.Params order, each bound
	// to the model's tensor.
	Params G.Nodes
}

// Build unrolls the network for input batches [n, InChannels, h, w] in a
// new graph. Batch norms read their mode (Model.SetTraining) at run time.
// Each call builds a separate graph with its own buffers; build once per
// input shape and reuse it.
func (m *Model) Build(n, h, w int) (*Graph, error) {
	if n < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("%w: batch shape %dx%dx%d", ErrInput, n, h, w)
	}
	g := G.NewGraph()
	gr := &Graph{
		G:      g,
		Input:  G.NewTensor(g, m.dtype, 4, G.WithShape(n, m.cfg.InChannels, h, w), G.WithName("input")),
		Params: make(G.Nodes, len(m.params)),
	}
	byName := make(map[string]*G.Node, len(m.params))
	for i, p := range m.params {
		gr.Params[i] = G.NewTensor(g, m.dtype, p.Value.Dims(), G.WithShape(p.Value.Shape()...), G.WithName(p.Name), G.WithValue(p.Value))
		byName[p.Name] = gr.Params[i]
	}
	b := &builder{m: m, params: byName}
	a := &m.arch
	x := b.convBN(gr.Input, a.stem, a.stemBN, true)
	if a.maxPool {
		x = b.do(func() (*G.Node, error) { return nn.MaxPool2D(x, 3, 2, 1) })
	}
	for _, blk := range a.blocks {
		x = b.block(x, blk)
	}
	gr.Encoder = b.do(func() (*G.Node, error) { return nn.GlobalAvgPool(x) })
	y := gr.Encoder
	for i, l := range a.head {
		if i > 0 {
			y = b.relu(y)
		}
		y = b.do(func() (*G.Node, error) { return nn.Linear(y, b.params[l.name+".weight"], b.params[l.name+".bias"]) })
	}
	gr.Head = y
	gr.Output = b.do(func() (*G.Node, error) { return nn.L2Normalize(y) })
	if b.err != nil {
		if errors.Is(b.err, nn.ErrShape) {
			return nil, fmt.Errorf("%w: input %dx%dx%dx%d: %w", ErrInput, n, m.cfg.InChannels, h, w, b.err)
		}
		return nil, b.err
	}
	return gr, nil
}

// builder applies nn ops, keeping the first error so that Build reads as the
// network it builds.
type builder struct {
	m      *Model
	params map[string]*G.Node
	err    error
}

func (b *builder) do(f func() (*G.Node, error)) *G.Node {
	if b.err != nil {
		return nil
	}
	n, err := f()
	if err != nil {
		b.err = err
	}
	return n
}

// relu is applied only to linear outputs, which nothing else reads, so it
// runs in place (one activation less each).
func (b *builder) relu(x *G.Node) *G.Node {
	return b.do(func() (*G.Node, error) { return nn.ReLUInPlace(x) })
}

// convBN is a convolution and its batch norm, followed by a ReLU (fused
// into the batch norm) if relu.
func (b *builder) convBN(x *G.Node, c convLayer, bn bnLayer, relu bool) *G.Node {
	y := b.do(func() (*G.Node, error) { return nn.Conv2D(x, b.params[c.name+".weight"], c.stride, c.pad) })
	st := b.m.bns[b.m.bnByID[bn.name]].State
	norm := nn.BatchNorm
	if relu {
		norm = nn.BatchNormReLU
	}
	return b.do(func() (*G.Node, error) {
		return norm(y, b.params[bn.name+".weight"], b.params[bn.name+".bias"], st)
	})
}

func (b *builder) block(x *G.Node, blk block) *G.Node {
	y := x
	for i := range blk.convs {
		y = b.convBN(y, blk.convs[i], blk.bns[i], i < len(blk.convs)-1)
	}
	sc := x
	if blk.shortcut != nil {
		sc = b.convBN(x, *blk.shortcut, blk.scBN, false)
	}
	return b.do(func() (*G.Node, error) { return nn.AddReLU(y, sc) })
}

// Outputs are copies of a forward run's results.
type Outputs struct {
	Encoder, Head, Output *tensor.Dense
}

// runner is a cached inference graph and its machine.
type runner struct {
	graph *Graph
	vm    G.VM
}

// Forward runs the network on x [N,InChannels,H,W] (the model's dtype) and
// returns copies of the encoder features, head output and normalised
// output. Batch norms run in their current mode: in training mode the
// running statistics are updated. The graph and machine for each input
// shape are built on first use and kept.
func (m *Model) Forward(x *tensor.Dense) (Outputs, error) {
	if x == nil {
		return Outputs{}, fmt.Errorf("%w: nil batch", ErrInput)
	}
	s := x.Shape()
	if s.Dims() != 4 || s[1] != m.cfg.InChannels {
		return Outputs{}, fmt.Errorf("%w: batch shape %v, want [N %d H W]", ErrInput, s, m.cfg.InChannels)
	}
	if x.Dtype() != m.dtype {
		return Outputs{}, fmt.Errorf("%w: batch dtype %v, model dtype %v", ErrInput, x.Dtype(), m.dtype)
	}
	key := [3]int{s[0], s[2], s[3]}
	r, ok := m.cache[key]
	if !ok {
		gr, err := m.Build(s[0], s[2], s[3])
		if err != nil {
			return Outputs{}, err
		}
		vm, err := Compile(gr.G, gr.Encoder, gr.Head, gr.Output)
		if err != nil {
			return Outputs{}, err
		}
		r = &runner{graph: gr, vm: vm}
		m.cache[key] = r
	}
	if err := G.Let(r.graph.Input, x); err != nil {
		return Outputs{}, fmt.Errorf("%w: bind batch: %w", ErrInput, err)
	}
	r.vm.Reset()
	if err := r.vm.RunAll(); err != nil {
		return Outputs{}, fmt.Errorf("model: forward %v: %w", s, nn.RunError(err))
	}
	out := Outputs{}
	for _, p := range []struct {
		dst  **tensor.Dense
		node *G.Node
	}{{&out.Encoder, r.graph.Encoder}, {&out.Head, r.graph.Head}, {&out.Output, r.graph.Output}} {
		v, ok := p.node.Value().(*tensor.Dense)
		if !ok {
			return Outputs{}, fmt.Errorf("model: forward produced %T for %v", p.node.Value(), p.node)
		}
		*p.dst = v.Clone().(*tensor.Dense)
	}
	return out, nil
}

// Compile prepares what roots need of g for running: the subgraph they
// reach (symbolic differentiation builds gradients nothing reads, such as
// the first convolution's input gradient), with its op buffers sharing
// storage where their values' lifetimes allow (nn.ShareBuffers), in a tape
// machine. After a run, only the values of roots are to be read.
func Compile(g *G.ExprGraph, roots ...*G.Node) (G.VM, error) {
	sub := g.ExactSubgraphRoots(roots...)
	if _, err := nn.ShareBuffers(sub, roots...); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return newMachine(sub)
}

// newMachine compiles g into a tape machine; gorgonia reports a failed
// compilation by panicking.
func newMachine(g *G.ExprGraph) (vm G.VM, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("model: compile graph: %v", p)
		}
	}()
	return G.NewTapeMachine(g), nil
}
