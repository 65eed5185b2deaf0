package model_test

import (
	"errors"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/safetensors"
)

func TestMarshalState(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			cfg := tinyConfig()
			cfg.Head = "linear"
			src, err := model.New(cfg, dt, 3)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := src.Forward(randBatch(dt, 4, 3, 8, 8)); err != nil {
				t.Fatal(err)
			}
			b, err := src.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Tensors["encoder.bn1.num_batches_tracked"]; got.DType != safetensors.I64 || len(got.Shape) != 0 {
				t.Errorf("num_batches_tracked stored as %s %v, want I64 scalar", got.DType, got.Shape)
			}
			dst, err := model.FromState(b)
			if err != nil {
				t.Fatal(err)
			}
			if dst.Config() != src.Config() || dst.Dtype() != dt {
				t.Errorf("FromState config %+v %v, want %+v %v", dst.Config(), dst.Dtype(), src.Config(), dt)
			}
			if !slices.EqualFunc(dst.State(), src.State(), func(a, b model.Tensor) bool {
				return a.Name == b.Name && slices.Equal(a.Shape, b.Shape) && slices.Equal(a.Data, b.Data)
			}) {
				t.Errorf("state differs after the round trip")
			}
		})
	}
}

func TestUnmarshalStateErrors(t *testing.T) {
	m, err := model.New(tinyConfig(), tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := model.New(model.Config{Widths: [4]int{4, 8, 8, 16}, Blocks: [4]int{1, 1, 1, 1}, FeatDim: 8}, tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := other.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"garbage": []byte("not a checkpoint"), "other model": wrong} {
		t.Run(name, func(t *testing.T) {
			if err := m.UnmarshalState(b); !errors.Is(err, model.ErrState) {
				t.Errorf("UnmarshalState error %v, want ErrState", err)
			}
		})
	}
	f := safetensors.New()
	f.PutFloat64s("x", []int{1}, []float64{1})
	noMeta, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := model.FromState(noMeta); !errors.Is(err, model.ErrState) {
		t.Errorf("FromState without metadata: %v, want ErrState", err)
	}
}
