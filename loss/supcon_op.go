package loss

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SupConNode appends the SupCon loss to a graph. features is a [N, dim]
// float32 or float64 node, rows view-major (row v*bsz+i = view v of sample
// i, N = nViews*bsz), typically the L2-normalised projection head output.
// mask is a [bsz, bsz] node of the same dtype holding positive weights
// (see [LabelMask] to build it from labels), or nil for the unsupervised
// SimCLR loss. The result is a scalar node; its gradient with respect to
// features is the kernel's ([SupCon]); mask gets none.
//
// The op supports symbolic differentiation (G.Grad + TapeMachine). Its
// backward pass recomputes the kernel rather than caching the forward
// result in the op, so an op is stateless and safe to share between
// machines; the cost is one extra [N, N] similarity product, small next to
// the encoder.
func SupConNode(features, mask *G.Node, nViews int, cfg SupConConfig) (*G.Node, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkFloatNode("features", features, 2); err != nil {
		return nil, err
	}
	shape := features.Shape()
	if nViews < 1 || shape[0]%nViews != 0 || shape[0] < 2 {
		return nil, fmt.Errorf("%w: features shape %v does not split into %d views of at least 2 rows in all", ErrInput, shape, nViews)
	}
	op := &supConOp{nViews: nViews, cfg: cfg}
	inputs := []*G.Node{features}
	if mask != nil {
		if err := checkFloatNode("mask", mask, 2); err != nil {
			return nil, err
		}
		bsz := shape[0] / nViews
		if ms := mask.Shape(); ms[0] != bsz || ms[1] != bsz {
			return nil, fmt.Errorf("%w: mask shape %v, want [%d %d]", ErrInput, ms, bsz, bsz)
		}
		if mask.Dtype() != features.Dtype() {
			return nil, fmt.Errorf("%w: mask dtype %v differs from features dtype %v", ErrInput, mask.Dtype(), features.Dtype())
		}
		op.hasMask = true
		inputs = append(inputs, mask)
	}
	out, err := G.ApplyOp(op, inputs...)
	if err != nil {
		return nil, fmt.Errorf("loss: apply SupCon op: %w", err)
	}
	return out, nil
}

// LabelMask returns the [bsz, bsz] positive mask of labels (1 where two
// samples share a label, 0 elsewhere) as a tensor of dtype dt, ready to bind
// to the mask node of [SupConNode].
func LabelMask(labels []int, dt tensor.Dtype) (*tensor.Dense, error) {
	n := len(labels)
	if n == 0 {
		return nil, fmt.Errorf("%w: no labels", ErrInput)
	}
	switch dt {
	case tensor.Float64:
		return tensor.New(tensor.WithShape(n, n), tensor.WithBacking(positiveWeights[float64](n, labels, nil))), nil
	case tensor.Float32:
		w := positiveWeights[float32](n, labels, nil)
		m := make([]float32, len(w))
		for i, v := range w {
			m[i] = float32(v)
		}
		return tensor.New(tensor.WithShape(n, n), tensor.WithBacking(m)), nil
	}
	return nil, fmt.Errorf("%w: mask dtype %v, want float32 or float64", ErrInput, dt)
}

// supConOp is the forward op: (features[, mask]) -> scalar loss.
type supConOp struct {
	nViews  int
	cfg     SupConConfig
	hasMask bool
}

func (op *supConOp) Arity() int {
	if op.hasMask {
		return 2
	}
	return 1
}

func (op *supConOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	mat := G.TensorType{Dims: 2, Of: a}
	if op.hasMask {
		return hm.NewFnType(mat, mat, a)
	}
	return hm.NewFnType(mat, a)
}

func (op *supConOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

func (op *supConOp) Do(inputs ...G.Value) (G.Value, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%w: %v takes %d inputs, got %d", ErrInput, op, op.Arity(), len(inputs))
	}
	switch inputs[0].Dtype() {
	case tensor.Float64:
		r, err := runSupCon[float64](op, inputs)
		if err != nil {
			return nil, err
		}
		return G.NewF64(r.Loss), nil
	case tensor.Float32:
		r, err := runSupCon[float32](op, inputs)
		if err != nil {
			return nil, err
		}
		return G.NewF32(float32(r.Loss)), nil
	}
	return nil, fmt.Errorf("%w: SupCon on %v features", ErrInput, inputs[0].Dtype())
}

// runSupCon runs the kernel on the op's first Arity() inputs.
func runSupCon[T Float](op *supConOp, inputs []G.Value) (SupConResult[T], error) {
	f, shape, err := floats[T](inputs[0])
	if err != nil {
		return SupConResult[T]{}, fmt.Errorf("features: %w", err)
	}
	if len(shape) != 2 {
		return SupConResult[T]{}, fmt.Errorf("%w: features shape %v, want [N dim]", ErrInput, shape)
	}
	var mask []T
	if op.hasMask {
		if mask, _, err = floats[T](inputs[1]); err != nil {
			return SupConResult[T]{}, fmt.Errorf("mask: %w", err)
		}
	}
	return SupCon(f, op.nViews, shape[1], nil, mask, op.cfg)
}

func (op *supConOp) ReturnsPtr() bool     { return false }
func (op *supConOp) CallsExtern() bool    { return false }
func (op *supConOp) OverwritesInput() int { return -1 }

func (op *supConOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

func (op *supConOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op *supConOp) String() string {
	return fmt.Sprintf("SupCon{views=%d, t=%v, base_t=%v, mode=%s, mask=%t}",
		op.nViews, op.cfg.Temperature, op.cfg.BaseTemperature, op.cfg.ContrastMode, op.hasMask)
}

func (op *supConOp) DiffWRT(n int) []bool {
	wrt := make([]bool, n)
	wrt[0] = true
	return wrt
}

func (op *supConOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%w: %v takes %d inputs, got %d", ErrInput, op, op.Arity(), len(inputs))
	}
	args := append(append(G.Nodes{}, inputs...), grad)
	d, err := G.ApplyOp(&supConDiffOp{op}, args...)
	if err != nil {
		return nil, fmt.Errorf("loss: apply SupCon gradient op: %w", err)
	}
	out := make(G.Nodes, len(inputs))
	out[0] = d
	return out, nil
}

// supConDiffOp is the backward op: (features[, mask], dLoss) -> dFeatures.
// It holds the forward op rather than embedding it, so it does not pose as
// differentiable itself.
type supConDiffOp struct{ fwd *supConOp }

func (op *supConDiffOp) Arity() int { return op.fwd.Arity() + 1 }

func (op *supConDiffOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	mat := G.TensorType{Dims: 2, Of: a}
	if op.fwd.hasMask {
		return hm.NewFnType(mat, mat, a, mat)
	}
	return hm.NewFnType(mat, a, mat)
}

func (op *supConDiffOp) InferShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, ok := inputs[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%w: features shape is %T", ErrInput, inputs[0])
	}
	return s.Clone(), nil
}

func (op *supConDiffOp) Do(inputs ...G.Value) (G.Value, error) {
	if len(inputs) != op.Arity() {
		return nil, fmt.Errorf("%w: %v takes %d inputs, got %d", ErrInput, op, op.Arity(), len(inputs))
	}
	k, err := scalar(inputs[len(inputs)-1])
	if err != nil {
		return nil, err
	}
	switch inputs[0].Dtype() {
	case tensor.Float64:
		r, err := runSupCon[float64](op.fwd, inputs)
		if err != nil {
			return nil, err
		}
		return scaled(r.Grad, k, inputs[0].Shape()), nil
	case tensor.Float32:
		r, err := runSupCon[float32](op.fwd, inputs)
		if err != nil {
			return nil, err
		}
		return scaled(r.Grad, k, inputs[0].Shape()), nil
	}
	return nil, fmt.Errorf("%w: SupCon gradient on %v features", ErrInput, inputs[0].Dtype())
}

func (op *supConDiffOp) ReturnsPtr() bool     { return false }
func (op *supConDiffOp) CallsExtern() bool    { return false }
func (op *supConDiffOp) OverwritesInput() int { return -1 }

func (op *supConDiffOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

func (op *supConDiffOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (op *supConDiffOp) String() string { return "Grad" + op.fwd.String() }
