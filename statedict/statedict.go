package statedict

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gorgonia.org/tensor"
)

// ErrInvalid is returned (wrapped) for a Tensor that breaks its invariants
// or a gorgonia tensor of another element type.
var ErrInvalid = errors.New("statedict: invalid tensor")

// Info names a tensor and gives its shape ([] for a scalar).
type Info struct {
	Name  string
	Shape []int
}

// Tensor is one array, row-major. Exactly one of F32, F64 and I64 is
// non-nil and holds prod(Shape) values (an empty, non-nil slice for a
// zero-size tensor); it is the element type.
type Tensor struct {
	Shape []int
	F32   []float32
	F64   []float64
	I64   []int64
}

// Dtype returns the element type of t: tensor.Float32, tensor.Float64 or
// tensor.Int64, or the zero Dtype when not exactly one data slice is set.
func (t Tensor) Dtype() tensor.Dtype {
	var dt tensor.Dtype
	n := 0
	if t.F32 != nil {
		dt, n = tensor.Float32, n+1
	}
	if t.F64 != nil {
		dt, n = tensor.Float64, n+1
	}
	if t.I64 != nil {
		dt, n = tensor.Int64, n+1
	}
	if n != 1 {
		return tensor.Dtype{}
	}
	return dt
}

// Validate checks that exactly one data slice is set and that it holds
// prod(Shape) values.
func (t Tensor) Validate() error {
	if t.Dtype() == (tensor.Dtype{}) {
		return fmt.Errorf("%w: exactly one of F32, F64 and I64 must be set", ErrInvalid)
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt/d) {
			return fmt.Errorf("%w: shape %v", ErrInvalid, t.Shape)
		}
		n *= d
	}
	if got := len(t.F32) + len(t.F64) + len(t.I64); got != n {
		return fmt.Errorf("%w: %d values for shape %v", ErrInvalid, got, t.Shape)
	}
	return nil
}

// FromDense copies a gorgonia tensor (float32, float64 or int64; views are
// materialised) into a Tensor of the same element type.
func FromDense(d *tensor.Dense) (Tensor, error) {
	if d == nil {
		return Tensor{}, fmt.Errorf("%w: nil tensor", ErrInvalid)
	}
	if d.IsMaterializable() {
		d = d.Materialize().(*tensor.Dense)
	}
	t := Tensor{Shape: slices.Clone([]int(d.Shape()))}
	if t.Shape == nil {
		t.Shape = []int{}
	}
	switch v := d.Data().(type) {
	case []float32:
		t.F32 = slices.Clone(v)
	case []float64:
		t.F64 = slices.Clone(v)
	case []int64:
		t.I64 = slices.Clone(v)
	case float32:
		t.F32 = []float32{v}
	case float64:
		t.F64 = []float64{v}
	case int64:
		t.I64 = []int64{v}
	default:
		return Tensor{}, fmt.Errorf("%w: tensor of %v; want float32, float64 or int64", ErrInvalid, d.Dtype())
	}
	return t, nil
}

// Dense copies t into a new gorgonia tensor of its element type and shape.
func (t Tensor) Dense() (*tensor.Dense, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var backing any
	switch {
	case t.F32 != nil:
		backing = slices.Clone(t.F32)
	case t.F64 != nil:
		backing = slices.Clone(t.F64)
	default:
		backing = slices.Clone(t.I64)
	}
	if len(t.Shape) == 0 {
		return tensor.New(tensor.FromScalar(scalarOf(backing))), nil
	}
	return tensor.New(tensor.WithShape(slices.Clone(t.Shape)...), tensor.WithBacking(backing)), nil
}

func scalarOf(backing any) any {
	switch v := backing.(type) {
	case []float32:
		return v[0]
	case []float64:
		return v[0]
	}
	return backing.([]int64)[0]
}
