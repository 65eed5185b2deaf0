package checkpoint

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"
)

// FromDense copies a gorgonia tensor (float32, float64 or int64; views are
// materialised) into a Tensor.
func FromDense(d *tensor.Dense) (Tensor, error) {
	if d == nil {
		return Tensor{}, fmt.Errorf("%w: nil tensor", ErrFormat)
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
		return Tensor{}, fmt.Errorf("%w: tensor of %v; want float32, float64 or int64", ErrFormat, d.Dtype())
	}
	return t, nil
}

// Dense copies t into a new gorgonia tensor of its dtype and shape.
func (t Tensor) Dense() (*tensor.Dense, error) {
	if t.DType() == "" {
		return nil, fmt.Errorf("%w: tensor must have exactly one of F32, F64, I64 set", ErrFormat)
	}
	if err := checkTensor("", t, t.DType()); err != nil {
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
