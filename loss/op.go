package loss

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// floats returns the backing slice of a float tensor value, materialising
// views so the kernels always see contiguous row-major data.
func floats[T Float](v G.Value) ([]T, tensor.Shape, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, nil, fmt.Errorf("%w: want a dense tensor, got %T", ErrInput, v)
	}
	if d.IsMaterializable() {
		d = d.Materialize().(*tensor.Dense)
	}
	data, ok := d.Data().([]T)
	if !ok {
		var zero T
		return nil, nil, fmt.Errorf("%w: tensor of %v, want %T", ErrInput, d.Dtype(), zero)
	}
	return data, d.Shape(), nil
}

// scalar reads the incoming gradient of a scalar output: a gorgonia scalar
// value or a one-element tensor.
func scalar(v G.Value) (float64, error) {
	switch s := v.(type) {
	case *G.F64:
		return float64(*s), nil
	case *G.F32:
		return float64(*s), nil
	case *tensor.Dense:
		if s.Size() == 1 {
			switch x := s.Data().(type) {
			case float64:
				return x, nil
			case float32:
				return float64(x), nil
			case []float64:
				return x[0], nil
			case []float32:
				return float64(x[0]), nil
			}
		}
	}
	return 0, fmt.Errorf("%w: output gradient %T is not a float scalar", ErrInput, v)
}

// scaled returns grad*k as a tensor of shape; k == 1 is the usual case of a
// loss at the end of the graph, so it skips the multiply.
func scaled[T Float](grad []T, k float64, shape tensor.Shape) *tensor.Dense {
	if k != 1 {
		for i := range grad {
			grad[i] *= T(k)
		}
	}
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(grad))
}

func checkFloatNode(name string, n *G.Node, dims int) error {
	if n == nil {
		return fmt.Errorf("%w: %s node is nil", ErrInput, name)
	}
	if dt := n.Dtype(); dt != tensor.Float64 && dt != tensor.Float32 {
		return fmt.Errorf("%w: %s node has dtype %v, want float32 or float64", ErrInput, name, dt)
	}
	if n.Shape().Dims() != dims {
		return fmt.Errorf("%w: %s node has shape %v, want %d dimensions", ErrInput, name, n.Shape(), dims)
	}
	return nil
}
