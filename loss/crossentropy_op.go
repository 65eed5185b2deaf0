package loss

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CrossEntropyNode appends softmax cross-entropy (mean over the batch) to a
// graph. logits is a [batch, classes] float32 or float64 node; targets is a
// [batch] node of dtype tensor.Int holding class indices. The result is a
// scalar node whose gradient with respect to logits is the kernel's
// ([CrossEntropy]); targets get none. An out-of-range target makes the
// machine's run fail with an error naming it.
func CrossEntropyNode(logits, targets *G.Node) (*G.Node, error) {
	if err := checkFloatNode("logits", logits, 2); err != nil {
		return nil, err
	}
	if targets == nil {
		return nil, fmt.Errorf("%w: targets node is nil", ErrInput)
	}
	if targets.Dtype() != tensor.Int || targets.Shape().Dims() != 1 {
		return nil, fmt.Errorf("%w: targets node is %v of shape %v, want a vector of int", ErrInput, targets.Dtype(), targets.Shape())
	}
	if b := logits.Shape()[0]; targets.Shape()[0] != b {
		return nil, fmt.Errorf("%w: %d targets for %d rows of logits", ErrInput, targets.Shape()[0], b)
	}
	out, err := G.ApplyOp(crossEntropyOp{}, logits, targets)
	if err != nil {
		return nil, fmt.Errorf("loss: apply cross-entropy op: %w", err)
	}
	return out, nil
}

// crossEntropyOp is the forward op: (logits, targets) -> scalar loss.
type crossEntropyOp struct{}

func (crossEntropyOp) Arity() int { return 2 }

func (crossEntropyOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: tensor.Int}, a)
}

func (crossEntropyOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op crossEntropyOp) Do(inputs ...G.Value) (G.Value, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%w: %v takes 2 inputs, got %d", ErrInput, op, len(inputs))
	}
	switch inputs[0].Dtype() {
	case tensor.Float64:
		r, err := runCrossEntropy[float64](inputs)
		if err != nil {
			return nil, err
		}
		return G.NewF64(r.Loss), nil
	case tensor.Float32:
		r, err := runCrossEntropy[float32](inputs)
		if err != nil {
			return nil, err
		}
		return G.NewF32(float32(r.Loss)), nil
	}
	return nil, fmt.Errorf("%w: cross-entropy on %v logits", ErrInput, inputs[0].Dtype())
}

func runCrossEntropy[T Float](inputs []G.Value) (CrossEntropyResult[T], error) {
	logits, shape, err := floats[T](inputs[0])
	if err != nil {
		return CrossEntropyResult[T]{}, fmt.Errorf("logits: %w", err)
	}
	if len(shape) != 2 {
		return CrossEntropyResult[T]{}, fmt.Errorf("%w: logits shape %v, want [batch classes]", ErrInput, shape)
	}
	td, ok := inputs[1].(*tensor.Dense)
	if !ok {
		return CrossEntropyResult[T]{}, fmt.Errorf("%w: targets value %T, want a dense int tensor", ErrInput, inputs[1])
	}
	if td.IsMaterializable() {
		td = td.Materialize().(*tensor.Dense)
	}
	targets, ok := td.Data().([]int)
	if !ok {
		return CrossEntropyResult[T]{}, fmt.Errorf("%w: targets of %v, want int", ErrInput, td.Dtype())
	}
	return CrossEntropy(logits, shape[1], targets)
}

func (crossEntropyOp) ReturnsPtr() bool     { return false }
func (crossEntropyOp) CallsExtern() bool    { return false }
func (crossEntropyOp) OverwritesInput() int { return -1 }
func (crossEntropyOp) String() string       { return "CrossEntropy" }

func (op crossEntropyOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

func (op crossEntropyOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

func (crossEntropyOp) DiffWRT(n int) []bool {
	wrt := make([]bool, n)
	wrt[0] = true
	return wrt
}

func (op crossEntropyOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%w: %v takes 2 inputs, got %d", ErrInput, op, len(inputs))
	}
	d, err := G.ApplyOp(crossEntropyDiffOp{}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("loss: apply cross-entropy gradient op: %w", err)
	}
	return G.Nodes{d, nil}, nil
}

// crossEntropyDiffOp is the backward op: (logits, targets, dLoss) -> dLogits.
type crossEntropyDiffOp struct{}

func (crossEntropyDiffOp) Arity() int { return 3 }

func (crossEntropyDiffOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	mat := G.TensorType{Dims: 2, Of: a}
	return hm.NewFnType(mat, G.TensorType{Dims: 1, Of: tensor.Int}, a, mat)
}

func (crossEntropyDiffOp) InferShape(inputs ...G.DimSizer) (tensor.Shape, error) {
	s, ok := inputs[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%w: logits shape is %T", ErrInput, inputs[0])
	}
	return s.Clone(), nil
}

func (op crossEntropyDiffOp) Do(inputs ...G.Value) (G.Value, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%w: %v takes 3 inputs, got %d", ErrInput, op, len(inputs))
	}
	k, err := scalar(inputs[2])
	if err != nil {
		return nil, err
	}
	switch inputs[0].Dtype() {
	case tensor.Float64:
		r, err := runCrossEntropy[float64](inputs)
		if err != nil {
			return nil, err
		}
		return scaled(r.Grad, k, inputs[0].Shape()), nil
	case tensor.Float32:
		r, err := runCrossEntropy[float32](inputs)
		if err != nil {
			return nil, err
		}
		return scaled(r.Grad, k, inputs[0].Shape()), nil
	}
	return nil, fmt.Errorf("%w: cross-entropy gradient on %v logits", ErrInput, inputs[0].Dtype())
}

func (crossEntropyDiffOp) ReturnsPtr() bool     { return false }
func (crossEntropyDiffOp) CallsExtern() bool    { return false }
func (crossEntropyDiffOp) OverwritesInput() int { return -1 }
func (crossEntropyDiffOp) String() string       { return "GradCrossEntropy" }

func (op crossEntropyDiffOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

func (op crossEntropyDiffOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
