package nn

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear returns x W^T + b for x [N,in], W [out,in] and b [out] (PyTorch's
// nn.Linear), giving [N,out].
func Linear(x, w, b *G.Node) (*G.Node, error) {
	if x == nil || w == nil || b == nil {
		return nil, fmt.Errorf("%w: nil linear input", ErrArg)
	}
	return apply(&linearOp{opBase: newBase("Linear")}, x, w, b)
}

// linearDims checks x [N,in], W [out,in] and returns N, in, out.
func linearDims(xs, ws tensor.Shape) (n, in, out int, err error) {
	if xs.Dims() != 2 || ws.Dims() != 2 || xs[1] != ws[1] {
		return 0, 0, 0, fmt.Errorf("%w: linear input %v and weight %v, want [N,in] and [out,in]", ErrShape, xs, ws)
	}
	return xs[0], xs[1], ws[0], nil
}

type linearOp struct {
	opBase
	out buffer
}

func (op *linearOp) outBuffer() *buffer { return &op.out }

func (op *linearOp) Arity() int         { return 3 }
func (op *linearOp) Type() hm.Type      { return fnType(2, 2, 1, 2) }
func (op *linearOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *linearOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(3, ds)
	if err != nil {
		return nil, err
	}
	n, _, out, err := linearDims(s[0], s[1])
	if err != nil {
		return nil, err
	}
	if !s[2].Eq(tensor.Shape{out}) {
		return nil, fmt.Errorf("%w: linear bias %v, want [%d]", ErrShape, s[2], out)
	}
	return tensor.Shape{n, out}, nil
}

func (op *linearOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	n, k, out, err := linearDims(in[0].Shape(), in[1].Shape())
	if err != nil {
		return nil, err
	}
	if !in[2].Shape().Eq(tensor.Shape{out}) {
		return nil, fmt.Errorf("%w: linear bias %v, want [%d]", ErrShape, in[2].Shape(), out)
	}
	y := op.out.get(in[0].Dtype(), tensor.Shape{n, out})
	if y.Dtype() == tensor.Float64 {
		linear(n, k, out, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](y))
	} else {
		linear(n, k, out, data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](y))
	}
	return y, nil
}

func linear[T float](n, k, out int, x, w, b, y []T) {
	for i := 0; i < n; i++ {
		copy(y[i*out:(i+1)*out], b)
	}
	gemm(false, true, n, out, k, 1, x, k, w, k, 1, y, out)
}

func (op *linearOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 3 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	x, w := inputs[0], inputs[1]
	// dx = dy W, dW = dy^T x, db = column sums of dy.
	dx, err := apply(&matMulOp{opBase: newBase("LinearGradX"), out: x.Shape().Clone()}, grad, w)
	if err != nil {
		return nil, err
	}
	dw, err := apply(&matMulOp{opBase: newBase("LinearGradW"), transA: true, out: w.Shape().Clone()}, grad, x)
	if err != nil {
		return nil, err
	}
	db, err := apply(&channelSumsOp{opBase: newBase("LinearGradB"), rank: 2, c: w.Shape()[0]}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// matMulOp is (a, b) -> op(a) b for 2-D a and b, op(a) = a or a^T.
type matMulOp struct {
	opBase
	transA bool
	out    tensor.Shape
	buf    buffer
}

func (op *matMulOp) outBuffer() *buffer { return &op.buf }

func (op *matMulOp) Arity() int    { return 2 }
func (op *matMulOp) Type() hm.Type { return fnType(2, 2, 2) }

// dims returns m, k, n of op(a) [m,k] times b [k,n].
func (op *matMulOp) dims(as, bs tensor.Shape) (m, k, n int, err error) {
	if as.Dims() != 2 || bs.Dims() != 2 {
		return 0, 0, 0, fmt.Errorf("%w: %v: %v and %v must be 2-D", ErrShape, op, as, bs)
	}
	m, k = as[0], as[1]
	if op.transA {
		m, k = k, m
	}
	if bs[0] != k || !op.out.Eq(tensor.Shape{m, bs[1]}) {
		return 0, 0, 0, fmt.Errorf("%w: %v: %v and %v do not give %v", ErrShape, op, as, bs, op.out)
	}
	return m, k, bs[1], nil
}

func (op *matMulOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(2, ds)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := op.dims(s[0], s[1]); err != nil {
		return nil, err
	}
	return op.out.Clone(), nil
}

func (op *matMulOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	m, k, n, err := op.dims(in[0].Shape(), in[1].Shape())
	if err != nil {
		return nil, err
	}
	lda := in[0].Shape()[1]
	c := op.buf.get(in[0].Dtype(), op.out)
	if c.Dtype() == tensor.Float64 {
		gemm(op.transA, false, m, n, k, 1, data[float64](in[0]), lda, data[float64](in[1]), n, 0, data[float64](c), n)
	} else {
		gemm(op.transA, false, m, n, k, 1, data[float32](in[0]), lda, data[float32](in[1]), n, 0, data[float32](c), n)
	}
	return c, nil
}

// L2Normalize divides each row of x [N,D] by max(||row||_2, 1e-12)
// (PyTorch's F.normalize(x, dim=1)).
func L2Normalize(x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("%w: nil normalize input", ErrArg)
	}
	return apply(&l2NormOp{opBase: newBase("L2Normalize")}, x)
}

// normEps is F.normalize's default lower bound on the norm.
const normEps = 1e-12

func rows2D(op G.Op, s tensor.Shape) (n, d int, err error) {
	if s.Dims() != 2 {
		return 0, 0, fmt.Errorf("%w: %v: input %v must be 2-D", ErrShape, op, s)
	}
	return s[0], s[1], nil
}

type l2NormOp struct {
	opBase
	out buffer
}

func (op *l2NormOp) outBuffer() *buffer { return &op.out }

func (op *l2NormOp) Arity() int         { return 1 }
func (op *l2NormOp) Type() hm.Type      { return fnType(2, 2) }
func (op *l2NormOp) DiffWRT(int) []bool { return []bool{true} }

func (op *l2NormOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(1, ds)
	if err != nil {
		return nil, err
	}
	if _, _, err := rows2D(op, s[0]); err != nil {
		return nil, err
	}
	return s[0].Clone(), nil
}

func (op *l2NormOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	_, d, err := rows2D(op, in[0].Shape())
	if err != nil {
		return nil, err
	}
	y := op.out.get(in[0].Dtype(), in[0].Shape())
	if y.Dtype() == tensor.Float64 {
		l2Normalize(d, data[float64](in[0]), data[float64](y))
	} else {
		l2Normalize(d, data[float32](in[0]), data[float32](y))
	}
	return y, nil
}

func rowNorm[T float](row []T) float64 {
	var s float64
	for _, v := range row {
		s += float64(v) * float64(v)
	}
	return max(math.Sqrt(s), normEps)
}

func l2Normalize[T float](d int, x, y []T) {
	for o := 0; o < len(x); o += d {
		inv := 1 / rowNorm(x[o:o+d])
		for j, v := range x[o : o+d] {
			y[o+j] = T(float64(v) * inv)
		}
	}
}

func (op *l2NormOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %v: %d inputs", ErrArg, op, len(inputs))
	}
	dx, err := apply(&l2NormGradOp{opBase: newBase("L2NormalizeGrad")}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// l2NormGradOp is (x, dy) -> dx: per row with r = max(||x||, eps),
// dx = (dy - y <y,dy>)/r when ||x|| > eps (y = x/r), else dy/eps.
type l2NormGradOp struct {
	opBase
	out buffer
}

func (op *l2NormGradOp) outBuffer() *buffer { return &op.out }

func (op *l2NormGradOp) Arity() int    { return 2 }
func (op *l2NormGradOp) Type() hm.Type { return fnType(2, 2, 2) }

func (op *l2NormGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := sameShapes(op, 2, ds)
	if err != nil {
		return nil, err
	}
	if _, _, err := rows2D(op, s); err != nil {
		return nil, err
	}
	return s, nil
}

func (op *l2NormGradOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	_, d, err := rows2D(op, in[0].Shape())
	if err != nil {
		return nil, err
	}
	if !in[1].Shape().Eq(in[0].Shape()) {
		return nil, fmt.Errorf("%w: %v: gradient %v, input %v", ErrShape, op, in[1].Shape(), in[0].Shape())
	}
	dx := op.out.get(in[0].Dtype(), in[0].Shape())
	if dx.Dtype() == tensor.Float64 {
		l2NormalizeGrad(d, data[float64](in[0]), data[float64](in[1]), data[float64](dx))
	} else {
		l2NormalizeGrad(d, data[float32](in[0]), data[float32](in[1]), data[float32](dx))
	}
	return dx, nil
}

func l2NormalizeGrad[T float](d int, x, dy, dx []T) {
	for o := 0; o < len(x); o += d {
		xr, gr := x[o:o+d], dy[o:o+d]
		r := rowNorm(xr)
		var dot float64 // <x, dy>
		if r > normEps {
			for j, v := range xr {
				dot += float64(v) * float64(gr[j])
			}
		}
		// dx = dy/r - x <x,dy>/r^3; dot is 0 when the norm is clamped.
		k := dot / (r * r * r)
		for j, v := range xr {
			dx[o+j] = T(float64(gr[j])/r - float64(v)*k)
		}
	}
}

// channelSumsOp is dy [N,C,...] -> the sum of dy per channel [C] (a
// linear layer's bias gradient).
type channelSumsOp struct {
	opBase
	rank int
	c    int
	out  buffer
}

func (op *channelSumsOp) outBuffer() *buffer { return &op.out }

func (op *channelSumsOp) Arity() int { return 1 }

func (op *channelSumsOp) Type() hm.Type { return fnType(op.rank, 1) }

func (op *channelSumsOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(1, ds)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := bnShape(s[0], op.c); err != nil {
		return nil, err
	}
	return tensor.Shape{op.c}, nil
}

func (op *channelSumsOp) Do(inputs ...G.Value) (G.Value, error) {
	in, err := denses(op, inputs)
	if err != nil {
		return nil, err
	}
	n, c, hw, err := bnShape(in[0].Shape(), op.c)
	if err != nil {
		return nil, err
	}
	db := op.out.get(in[0].Dtype(), tensor.Shape{c})
	if db.Dtype() == tensor.Float64 {
		channelSums(n, c, hw, data[float64](in[0]), data[float64](db))
	} else {
		channelSums(n, c, hw, data[float32](in[0]), data[float32](db))
	}
	return db, nil
}

func channelSums[T float](n, c, hw int, x, out []T) {
	channelBlocks(n, c, hw, func(lo, hi int) {
		s := make([]float64, hi-lo)
		for i := range n {
			p := planes(x, i, c, hw, lo, hi)
			for j := range s {
				s[j] += sum(p[j*hw : (j+1)*hw])
			}
		}
		for j, v := range s {
			out[lo+j] = T(v)
		}
	})
}
