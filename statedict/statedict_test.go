package statedict

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"gorgonia.org/tensor"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		t    Tensor
		ok   bool
	}{
		{"matrix", Tensor{Shape: []int{2, 1}, F32: []float32{1, 2}}, true},
		{"scalar counter", Tensor{Shape: []int{}, I64: []int64{3}}, true},
		{"zero size", Tensor{Shape: []int{0, 4}, F64: []float64{}}, true},
		{"no data", Tensor{Shape: []int{1}}, false},
		{"two data slices", Tensor{Shape: []int{1}, F32: []float32{1}, I64: []int64{1}}, false},
		{"short data", Tensor{Shape: []int{3}, F32: []float32{1}}, false},
		{"negative dim", Tensor{Shape: []int{-1}, F32: []float32{}}, false},
		{"overflowing shape", Tensor{Shape: []int{math.MaxInt, 2}, F32: []float32{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Validate = %v, want ok=%t", err, tt.ok)
			}
		})
	}
}

func TestDense(t *testing.T) {
	tests := []struct {
		name string
		d    *tensor.Dense
	}{
		{"float32 matrix", tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))},
		{"float64 vector", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{-1, 1}))},
		{"int64 scalar", tensor.New(tensor.FromScalar(int64(3)))},
		{"float64 scalar", tensor.New(tensor.FromScalar(2.5))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := FromDense(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			if st.Dtype() != tt.d.Dtype() {
				t.Errorf("Dtype %v, want %v", st.Dtype(), tt.d.Dtype())
			}
			back, err := st.Dense()
			if err != nil {
				t.Fatal(err)
			}
			if back.Dtype() != tt.d.Dtype() || !reflect.DeepEqual(back.Data(), tt.d.Data()) || !back.Shape().Eq(tt.d.Shape()) {
				t.Errorf("round trip gave %v %v %v, want %v %v %v",
					back.Dtype(), back.Shape(), back.Data(), tt.d.Dtype(), tt.d.Shape(), tt.d.Data())
			}
		})
	}
	if _, err := FromDense(tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{1, 2}))); !errors.Is(err, ErrInvalid) {
		t.Errorf("int tensor: err = %v", err)
	}
	if _, err := FromDense(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil tensor: err = %v", err)
	}
	if _, err := (Tensor{Shape: []int{2}, F32: []float32{1}}).Dense(); !errors.Is(err, ErrInvalid) {
		t.Errorf("short tensor: err = %v", err)
	}
}
