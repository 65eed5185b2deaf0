package nn

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GlobalAvgPool averages x [N,C,H,W] over H and W, giving [N,C] (adaptive
// average pooling to 1x1 followed by flatten).
func GlobalAvgPool(x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("%w: nil pooling input", ErrArg)
	}
	return apply(&avgPoolOp{opBase: newBase("GlobalAvgPool")}, x)
}

func check4D(what string, s tensor.Shape) error {
	if s.Dims() != 4 {
		return fmt.Errorf("%w: %s input %v must be 4-D", ErrShape, what, s)
	}
	for _, d := range s {
		if d < 1 {
			return fmt.Errorf("%w: %s input %v has an empty dimension", ErrShape, what, s)
		}
	}
	return nil
}

type avgPoolOp struct {
	opBase
	out buffer
}

func (op *avgPoolOp) outBuffer() *buffer { return &op.out }

func (op *avgPoolOp) Arity() int         { return 1 }
func (op *avgPoolOp) Type() hm.Type      { return fnType(4, 2) }
func (op *avgPoolOp) DiffWRT(int) []bool { return []bool{true} }

func (op *avgPoolOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(1, ds)
	if err != nil {
		return nil, err
	}
	if err := check4D("global average pool", s[0]); err != nil {
		return nil, err
	}
	return tensor.Shape{s[0][0], s[0][1]}, nil
}

func (op *avgPoolOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	s := in[0].Shape()
	if err := check4D("global average pool", s); err != nil {
		return nil, err
	}
	y := op.out.get(in[0].Dtype(), tensor.Shape{s[0], s[1]})
	if y.Dtype() == tensor.Float64 {
		avgPool(s[2]*s[3], data[float64](in[0]), data[float64](y))
	} else {
		avgPool(s[2]*s[3], data[float32](in[0]), data[float32](y))
	}
	return y, nil
}

func avgPool[T float](hw int, x, y []T) {
	for i := range y {
		var s float64
		for _, v := range x[i*hw : (i+1)*hw] {
			s += float64(v)
		}
		y[i] = T(s / float64(hw))
	}
}

func (op *avgPoolOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	dx, err := apply(&avgPoolGradOp{opBase: newBase("GlobalAvgPoolGrad"), xShape: inputs[0].Shape().Clone()}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// avgPoolGradOp is dy [N,C] -> dx [N,C,H,W], spreading dy/(H*W).
type avgPoolGradOp struct {
	opBase
	xShape tensor.Shape
	out    buffer
}

func (op *avgPoolGradOp) outBuffer() *buffer { return &op.out }

func (op *avgPoolGradOp) Arity() int    { return 1 }
func (op *avgPoolGradOp) Type() hm.Type { return fnType(2, 4) }

func (op *avgPoolGradOp) yShape() tensor.Shape { return tensor.Shape{op.xShape[0], op.xShape[1]} }

func (op *avgPoolGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(1, ds)
	if err != nil {
		return nil, err
	}
	if !s[0].Eq(op.yShape()) {
		return nil, fmt.Errorf("%w: %v: gradient %v, want %v", ErrShape, op, s[0], op.yShape())
	}
	return op.xShape.Clone(), nil
}

func (op *avgPoolGradOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs, op.yShape())
	if err != nil {
		return nil, err
	}
	dx := op.out.get(in[0].Dtype(), op.xShape)
	hw := op.xShape[2] * op.xShape[3]
	if dx.Dtype() == tensor.Float64 {
		avgPoolGrad(hw, data[float64](in[0]), data[float64](dx))
	} else {
		avgPoolGrad(hw, data[float32](in[0]), data[float32](dx))
	}
	return dx, nil
}

func avgPoolGrad[T float](hw int, dy, dx []T) {
	for i, g := range dy {
		v := T(float64(g) / float64(hw))
		d := dx[i*hw : (i+1)*hw]
		for j := range d {
			d[j] = v
		}
	}
}

// MaxPool2D takes the maximum of x [N,C,H,W] over k×k windows with the given
// stride and implicit -inf padding pad (PyTorch's max_pool2d, floor mode):
// output [N,C,Ho,Wo], Ho = (H+2*pad-k)/stride + 1. pad may be at most k/2.
// The gradient goes to the first maximum of each window.
func MaxPool2D(x *G.Node, k, stride, pad int) (*G.Node, error) {
	if k < 1 || stride < 1 || pad < 0 || pad > k/2 {
		return nil, fmt.Errorf("%w: max pool kernel %d, stride %d, pad %d (want pad <= kernel/2)", ErrArg, k, stride, pad)
	}
	if x == nil {
		return nil, fmt.Errorf("%w: nil pooling input", ErrArg)
	}
	return apply(&maxPoolOp{opBase: newBase("MaxPool2D(k%d,s%d,p%d)", k, stride, pad), k: k, stride: stride, pad: pad}, x)
}

type maxPoolOp struct {
	opBase
	k, stride, pad int
	out            buffer
	// argmax holds, per output element, the flat index into x of the
	// maximum the last forward run picked.
	argmax []int
}

func (op *maxPoolOp) outBuffer() *buffer { return &op.out }

func (op *maxPoolOp) Arity() int         { return 1 }
func (op *maxPoolOp) Type() hm.Type      { return fnType(4, 4) }
func (op *maxPoolOp) DiffWRT(int) []bool { return []bool{true} }

func (op *maxPoolOp) outShape(s tensor.Shape) (tensor.Shape, error) {
	if err := check4D("max pool", s); err != nil {
		return nil, err
	}
	if s[2]+2*op.pad < op.k || s[3]+2*op.pad < op.k {
		return nil, fmt.Errorf("%w: max pool kernel %d larger than padded input %v (pad %d)", ErrShape, op.k, s, op.pad)
	}
	return tensor.Shape{s[0], s[1], (s[2]+2*op.pad-op.k)/op.stride + 1, (s[3]+2*op.pad-op.k)/op.stride + 1}, nil
}

func (op *maxPoolOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(1, ds)
	if err != nil {
		return nil, err
	}
	return op.outShape(s[0])
}

func (op *maxPoolOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	xs := in[0].Shape()
	ys, err := op.outShape(xs)
	if err != nil {
		return nil, err
	}
	y := op.out.get(in[0].Dtype(), ys)
	if n := ys.TotalSize(); cap(op.argmax) < n {
		op.argmax = make([]int, n)
	} else {
		op.argmax = op.argmax[:n]
	}
	if y.Dtype() == tensor.Float64 {
		maxPool(op, xs, ys, data[float64](in[0]), data[float64](y))
	} else {
		maxPool(op, xs, ys, data[float32](in[0]), data[float32](y))
	}
	return y, nil
}

func maxPool[T float](op *maxPoolOp, xs, ys tensor.Shape, x, y []T) {
	h, w, ho, wo := xs[2], xs[3], ys[2], ys[3]
	planes := xs[0] * xs[1]
	parallelBalanced(planes, parts(planes, h*w), func(_, lo, hi int) {
		maxPoolPlanes(op, h, w, ho, wo, lo, hi, x, y)
	})
}

// maxPoolPlanes pools the planes [lo, hi) of x into y. The first maximum
// of a window wins, and a NaN wins over any number (the last NaN).
// Comparing in T, not float64, made this loop 1.4x faster.
func maxPoolPlanes[T float](op *maxPoolOp, h, w, ho, wo, lo, hi int, x, y []T) {
	for p := lo; p < hi; p++ {
		xo, yo := p*h*w, p*ho*wo
		for i := 0; i < ho; i++ {
			ilo, ihi := max(i*op.stride-op.pad, 0), min(i*op.stride-op.pad+op.k, h)
			ys, as := y[yo+i*wo:][:wo], op.argmax[yo+i*wo:][:wo]
			for j := range ys {
				jlo, jhi := max(j*op.stride-op.pad, 0), min(j*op.stride-op.pad+op.k, w)
				at := xo + ilo*w + jlo
				best := x[at]
				for u := ilo; u < ihi; u++ {
					r := xo + u*w
					for v, val := range x[r+jlo : r+jhi] {
						if val > best || val != val {
							best, at = val, r+jlo+v
						}
					}
				}
				ys[j], as[j] = best, at
			}
		}
	}
}

func (op *maxPoolOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	g := &maxPoolGradOp{opBase: newBase("MaxPool2DGrad(k%d,s%d,p%d)", op.k, op.stride, op.pad), fwd: op, xShape: inputs[0].Shape().Clone()}
	// output is read only to run after the forward whose argmax we use.
	dx, err := apply(g, output, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// maxPoolGradOp is (y, dy) -> dx, routing dy to the recorded maxima.
type maxPoolGradOp struct {
	opBase
	fwd    *maxPoolOp
	xShape tensor.Shape
	out    buffer
}

func (op *maxPoolGradOp) outBuffer() *buffer { return &op.out }

func (op *maxPoolGradOp) Arity() int    { return 2 }
func (op *maxPoolGradOp) Type() hm.Type { return fnType(4, 4, 4) }

func (op *maxPoolGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := sameShapes(op, 2, ds)
	if err != nil {
		return nil, err
	}
	if ys, err := op.fwd.outShape(op.xShape); err != nil || !s.Eq(ys) {
		return nil, fmt.Errorf("%w: %v: gradient %v for input %v", ErrShape, op, s, op.xShape)
	}
	return op.xShape.Clone(), nil
}

func (op *maxPoolGradOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	if n := in[1].Shape().TotalSize(); n != len(op.fwd.argmax) {
		return nil, fmt.Errorf("%w: %v: gradient %v does not match the last forward run", ErrShape, op, in[1].Shape())
	}
	dx := op.out.get(in[0].Dtype(), op.xShape)
	planes := op.xShape[0] * op.xShape[1]
	if dx.Dtype() == tensor.Float64 {
		scatter(planes, op.fwd.argmax, data[float64](in[1]), data[float64](dx))
	} else {
		scatter(planes, op.fwd.argmax, data[float32](in[1]), data[float32](dx))
	}
	return dx, nil
}

// scatter adds dy into dx at the recorded maxima; each of the planes of dy
// routes into the same plane of dx, so planes go to goroutines whole.
func scatter[T float](planes int, at []int, dy, dx []T) {
	in, out := len(dx)/planes, len(dy)/planes
	parallelBalanced(planes, parts(planes, in), func(_, lo, hi int) {
		clear(dx[lo*in : hi*in])
		for i := lo * out; i < hi*out; i++ {
			dx[at[i]] += dy[i]
		}
	})
}
