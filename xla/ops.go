package xla

import (
	"errors"
	"fmt"
	"math"

	S "github.com/gomlx/go-xla/pkg/stablehlo"
	"github.com/gomlx/go-xla/pkg/types"
	"github.com/gomlx/go-xla/pkg/types/dtypes"
	"github.com/gomlx/go-xla/pkg/types/shapes"
)

// ErrLower reports a configuration the lowering does not cover or a
// program the builder refused.
var ErrLower = errors.New("xla: cannot lower")

// buildError carries a builder error out of the op helpers, which panic
// with it so that the lowering reads as the network it emits; lower
// recovers it into an error.
type buildError struct{ err error }

func must(v *S.Value, err error) *S.Value {
	if err != nil {
		panic(buildError{err})
	}
	return v
}

// emit runs f, turning a builder error it panicked with into ErrLower.
func emit(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			be, ok := p.(buildError)
			if !ok {
				panic(p)
			}
			err = fmt.Errorf("%w: %w", ErrLower, be.err)
		}
	}()
	f()
	return nil
}

// fn wraps the function being emitted with helpers in its float dtype dt.
type fn struct {
	f  *S.Function
	dt dtypes.DType
}

func dims(v *S.Value) []int { return v.Shape().Dimensions }

// scalarOf is a constant of dtype dt.
func (b *fn) scalarOf(dt dtypes.DType, x float64) *S.Value {
	switch dt {
	case dtypes.Float32:
		return must(b.f.ConstantFromScalar(float32(x)))
	case dtypes.Float64:
		return must(b.f.ConstantFromScalar(x))
	}
	panic(buildError{fmt.Errorf("constant of dtype %s", dt)})
}

// full is x broadcast to shape d in dtype dt.
func (b *fn) full(dt dtypes.DType, x float64, d []int) *S.Value {
	return must(S.BroadcastInDim(b.scalarOf(dt, x), shapes.Make(dt, d...), nil))
}

// like is x broadcast to v's shape and dtype.
func (b *fn) like(v *S.Value, x float64) *S.Value { return b.full(v.Shape().DType, x, dims(v)) }

// bcast broadcasts v to shape d (v's dtype), v's axes landing on axes.
func bcast(v *S.Value, d []int, axes ...int) *S.Value {
	return must(S.BroadcastInDim(v, shapes.Make(v.Shape().DType, d...), axes))
}

func add(x, y *S.Value) *S.Value { return must(S.Add(x, y)) }
func sub(x, y *S.Value) *S.Value { return must(S.Subtract(x, y)) }
func mul(x, y *S.Value) *S.Value { return must(S.Multiply(x, y)) }
func div(x, y *S.Value) *S.Value { return must(S.Divide(x, y)) }

const (
	gt  = types.CompareGT
	geq = types.CompareGE
	lt  = types.CompareLT
	eq  = types.CompareEQ
	ne  = types.CompareNE
)

func cmp(x, y *S.Value, d types.ComparisonDirection) *S.Value {
	ct := types.CompareFloat
	if !x.Shape().DType.IsFloat() {
		ct = types.CompareSigned
	}
	return must(S.Compare(x, y, d, ct))
}

func sel(pred, onTrue, onFalse *S.Value) *S.Value { return must(S.Select(pred, onTrue, onFalse)) }

// binaryClosure is a reduction body applying op to two scalars of dtype dt.
func (b *fn) binaryClosure(dt dtypes.DType, op func(x, y *S.Value) (*S.Value, error)) *S.Function {
	c := b.f.Closure()
	x := must(c.NamedInput("a", shapes.Make(dt)))
	y := must(c.NamedInput("b", shapes.Make(dt)))
	if err := c.Return(must(op(x, y))); err != nil {
		panic(buildError{err})
	}
	return c
}

// sum reduces x over axes.
func (b *fn) sum(x *S.Value, axes ...int) *S.Value {
	dt := x.Shape().DType
	return must(S.Reduce(x, b.scalarOf(dt, 0), b.binaryClosure(dt, S.Add), axes...))
}

// reduceMax reduces x over axes with maximum.
func (b *fn) reduceMax(x *S.Value, axes ...int) *S.Value {
	dt := x.Shape().DType
	return must(S.Reduce(x, b.scalarOf(dt, math.Inf(-1)), b.binaryClosure(dt, S.Maximum), axes...))
}

// conv is PyTorch's cross-correlation of x [N,C,H,W] with w [O,C,K,K].
func conv(x, w *S.Value, stride, pad int) *S.Value {
	return must(S.Convolution(x, w, []int{stride, stride}, [][2]int{{pad, pad}, {pad, pad}}, nil, nil,
		0, 1, []int{2, 3}, 1, 0, []int{2, 3}, 0, 1, []int{2, 3}, 1, 1,
		types.DotGeneralPrecisionDefault, types.DotGeneralPrecisionDefault))
}

// convInputGrad is d(conv(x, w))/dx for dy [N,O,Ho,Wo] and an input of
// spatial size h x w: dy, dilated by the stride, correlated with the
// spatially reversed kernel read as [C,O] (its input and output feature
// axes swapped).
func convInputGrad(dy, wt *S.Value, stride, pad, h, w int) *S.Value {
	k := dims(wt)[2]
	ho, wo := dims(dy)[2], dims(dy)[3]
	lo := k - 1 - pad
	rev := must(S.Reverse(wt, 2, 3))
	return must(S.Convolution(dy, rev, nil,
		[][2]int{{lo, h + pad - (ho-1)*stride - 1}, {lo, w + pad - (wo-1)*stride - 1}},
		[]int{stride, stride}, nil,
		0, 1, []int{2, 3}, 0, 1, []int{2, 3}, 0, 1, []int{2, 3}, 1, 1,
		types.DotGeneralPrecisionDefault, types.DotGeneralPrecisionDefault))
}

// convWeightGrad is d(conv(x, w))/dw [O,C,K,K] for dy [N,O,Ho,Wo]: x read
// with its channels as the batch and its batch as the features, correlated
// with dy dilated by the stride. Rows and columns of x past the last window
// are sliced off rather than padded negatively.
func convWeightGrad(x, dy *S.Value, stride, pad, k int) *S.Value {
	d := dims(x)
	ho, wo := dims(dy)[2], dims(dy)[3]
	// Input extent the windows reach, before padding: (out-1)*stride + k - pad.
	hUse, wUse := (ho-1)*stride+k-pad, (wo-1)*stride+k-pad
	if hUse < d[2] || wUse < d[3] {
		x = must(S.Slice(x, []int{0, 0, 0, 0}, []int{d[0], d[1], min(hUse, d[2]), min(wUse, d[3])}, nil))
		d = dims(x)
	}
	return must(S.Convolution(x, dy, nil,
		[][2]int{{pad, hUse - d[2]}, {pad, wUse - d[3]}}, nil, []int{stride, stride},
		1, 0, []int{2, 3}, 0, 1, []int{2, 3}, 1, 0, []int{2, 3}, 1, 1,
		types.DotGeneralPrecisionDefault, types.DotGeneralPrecisionDefault))
}

// matmul contracts axis ca of x with axis cb of y.
func matmul(x *S.Value, ca int, y *S.Value, cb int) *S.Value {
	return must(S.DotGeneral(x, []int{ca}, nil, y, []int{cb}, nil).Done())
}
