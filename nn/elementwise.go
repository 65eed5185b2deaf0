package nn

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU returns max(x, 0) elementwise; its derivative is taken as 0 at x <= 0
// (PyTorch's convention).
func ReLU(x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("%w: nil ReLU input", ErrArg)
	}
	return apply(&reluOp{opBase: newBase("ReLU"), rank: x.Shape().Dims()}, x)
}

// ReLUInPlace is ReLU writing its result over x's value instead of into a
// buffer of its own, which saves one activation per call. Use it only where
// nothing but this ReLU reads x's values: in a ResNet, the outputs of batch
// norm, residual Add and Linear, whose backward ops do not read them (the
// ReLU's own backward needs only the sign, which the result keeps).
func ReLUInPlace(x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("%w: nil ReLU input", ErrArg)
	}
	return apply(&reluOp{opBase: newBase("ReLUInPlace"), rank: x.Shape().Dims(), inPlace: true}, x)
}

// Add returns a + b for two tensors of the same shape (the residual sum).
func Add(a, b *G.Node) (*G.Node, error) { return newAdd("Add", a, b, false) }

// AddReLU returns ReLU(a + b) in one pass (a residual block's output); its
// backward masks the gradient once for both summands.
func AddReLU(a, b *G.Node) (*G.Node, error) { return newAdd("AddReLU", a, b, true) }

func newAdd(name string, a, b *G.Node, relu bool) (*G.Node, error) {
	if a == nil || b == nil {
		return nil, fmt.Errorf("%w: nil %s input", ErrArg, name)
	}
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("%w: add %v and %v", ErrShape, a.Shape(), b.Shape())
	}
	return apply(&addOp{opBase: newBase("%s", name), rank: a.Shape().Dims(), relu: relu}, a, b)
}

// sameShapes checks that all inputs share the first one's shape.
func sameShapes(op G.Op, n int, ds []G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(n, ds)
	if err != nil {
		return nil, err
	}
	for i := 1; i < n; i++ {
		if !s[i].Eq(s[0]) {
			return nil, fmt.Errorf("%w: %v: input %d has shape %v, input 0 %v", ErrShape, op, i, s[i], s[0])
		}
	}
	return s[0].Clone(), nil
}

// elementwise runs f over same-shaped inputs into the op's buffer, or over
// input 0 itself when out is nil.
func elementwise(op G.Op, out *buffer, inputs []G.Value, f64 func(dst []float64, src ...[]float64), f32 func(dst []float32, src ...[]float32)) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	for i, d := range in[1:] {
		if !d.Shape().Eq(s) {
			return nil, fmt.Errorf("%w: %v: input %d has shape %v, input 0 %v", ErrShape, op, i+1, d.Shape(), s)
		}
	}
	y := in[0]
	if out != nil {
		y = out.get(in[0].Dtype(), s)
	}
	if y.Dtype() == tensor.Float64 {
		split(data[float64](y), slices[float64](in), f64)
	} else {
		split(data[float32](y), slices[float32](in), f32)
	}
	return y, nil
}

// split runs f over contiguous pieces of dst and the matching pieces of
// src, concurrently when they are large.
func split[T float](dst []T, src [][]T, f func(dst []T, src ...[]T)) {
	parallelBalanced(len(dst), parts(len(dst), len(src)+1), func(_, lo, hi int) {
		sub := make([][]T, len(src))
		for i, s := range src {
			sub[i] = s[lo:hi]
		}
		f(dst[lo:hi], sub...)
	})
}

func slices[T float](in []*tensor.Dense) [][]T {
	out := make([][]T, len(in))
	for i, d := range in {
		out[i] = data[T](d)
	}
	return out
}

func relu[T float](dst []T, src ...[]T) {
	for i, v := range src[0] {
		dst[i] = max(v, 0)
	}
}

// reluGrad32 computes dy where x > 0, else 0; src is (x, dy). It masks
// the bits of dy instead of branching: the sign of x is a coin flip, and
// the mispredicted branch made this loop cost 5x the ReLU itself.
func reluGrad32(dst []float32, src ...[]float32) {
	if v := vecLoops32; v != nil {
		v.reluGrad(dst, src[0], src[1])
		return
	}
	x := src[0]
	dy, dst := src[1][:len(x)], dst[:len(x)]
	for i, v := range x {
		var m uint32
		if v > 0 {
			m = ^uint32(0)
		}
		dst[i] = math.Float32frombits(math.Float32bits(dy[i]) & m)
	}
}

// reluGrad64 is reluGrad32 for float64.
func reluGrad64(dst []float64, src ...[]float64) {
	x := src[0]
	dy, dst := src[1][:len(x)], dst[:len(x)]
	for i, v := range x {
		dst[i] = keepIf(dy[i], v > 0)
	}
}

func add[T float](dst []T, src ...[]T) {
	b := src[1]
	for i, v := range src[0] {
		dst[i] = v + b[i]
	}
}

func addReLU[T float](dst []T, src ...[]T) {
	if d32, v := vec32(dst); v != nil {
		v.addReLU(d32, any(src[0]).([]float32), any(src[1]).([]float32))
		return
	}
	b := src[1]
	for i, v := range src[0] {
		dst[i] = max(v+b[i], 0)
	}
}

type reluOp struct {
	opBase
	rank    int
	out     buffer
	inPlace bool
}

func (op *reluOp) outBuffer() *buffer { return &op.out }

func (op *reluOp) Arity() int         { return 1 }
func (op *reluOp) Type() hm.Type      { return fnType(op.rank, op.rank) }
func (op *reluOp) DiffWRT(int) []bool { return []bool{true} }

func (op *reluOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return sameShapes(op, 1, ds) }

func (op *reluOp) Do(inputs ...G.Value) (G.Value, error) {
	out := &op.out
	if op.inPlace {
		out = nil
	}
	return elementwise(op, out, inputs, relu[float64], relu[float32])
}

func (op *reluOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	dx, err := apply(&reluGradOp{opBase: newBase("ReLUGrad"), rank: op.rank}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// reluGradOp is (x, dy) -> dx.
type reluGradOp struct {
	opBase
	rank int
	out  buffer
}

func (op *reluGradOp) outBuffer() *buffer { return &op.out }

func (op *reluGradOp) Arity() int    { return 2 }
func (op *reluGradOp) Type() hm.Type { return fnType(op.rank, op.rank, op.rank) }

func (op *reluGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return sameShapes(op, 2, ds)
}

func (op *reluGradOp) Do(inputs ...G.Value) (G.Value, error) {
	return elementwise(op, &op.out, inputs, reluGrad64, reluGrad32)
}

// addOp is (a, b) -> a + b, or ReLU(a + b) if relu.
type addOp struct {
	opBase
	rank int
	relu bool
	out  buffer
}

func (op *addOp) outBuffer() *buffer { return &op.out }

func (op *addOp) Arity() int         { return 2 }
func (op *addOp) Type() hm.Type      { return fnType(op.rank, op.rank, op.rank) }
func (op *addOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *addOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) { return sameShapes(op, 2, ds) }

func (op *addOp) Do(inputs ...G.Value) (G.Value, error) {
	if op.relu {
		return elementwise(op, &op.out, inputs, addReLU[float64], addReLU[float32])
	}
	return elementwise(op, &op.out, inputs, add[float64], add[float32])
}

// SymDiff passes the gradient to both summands, through the ReLU's mask
// (taken from the output, whose sign is the sum's) if there is one.
func (op *addOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	if op.relu {
		g, err := apply(&reluGradOp{opBase: newBase("ReLUGrad"), rank: op.rank}, output, grad)
		if err != nil {
			return nil, err
		}
		grad = g
	}
	return G.Nodes{grad, grad}, nil
}
