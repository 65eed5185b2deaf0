package model

import (
	"encoding/json"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/safetensors"
)

// Metadata keys of the bytes MarshalState writes.
const (
	metaConfig = "supflow.model.config"
	metaDtype  = "supflow.model.dtype"
)

// MarshalState encodes every parameter and buffer as safetensors bytes
// under the PyTorch state_dict names, as torch.save(model.state_dict())
// holds them: parameters and running statistics in the model's dtype (F32
// or F64), num_batches_tracked as an I64 scalar. The header metadata records
// the resolved Config and dtype, so that FromState can rebuild the model.
func (m *Model) MarshalState() ([]byte, error) {
	f := safetensors.New()
	cfg, err := json.Marshal(m.cfg)
	if err != nil {
		return nil, fmt.Errorf("model: encode config: %w", err)
	}
	f.Metadata[metaConfig] = string(cfg)
	f.Metadata[metaDtype] = m.dtype.String()
	for _, t := range m.State() {
		switch {
		case len(t.Shape) == 0:
			f.PutInt64s(t.Name, t.Shape, []int64{int64(t.Data[0])})
		case m.dtype == tensor.Float32:
			v := make([]float32, len(t.Data))
			for i, x := range t.Data {
				v[i] = float32(x)
			}
			f.PutFloat32s(t.Name, t.Shape, v)
		default:
			f.PutFloat64s(t.Name, t.Shape, t.Data)
		}
	}
	b, err := f.Bytes()
	if err != nil {
		return nil, fmt.Errorf("model: encode state: %w", err)
	}
	return b, nil
}

// UnmarshalState loads bytes from MarshalState, or any safetensors file
// holding exactly the model's state_dict names in any numeric dtype, with
// LoadState's checks. Nothing changes on error.
func (m *Model) UnmarshalState(b []byte) error {
	f, err := safetensors.Parse(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	state := make([]Tensor, 0, len(f.Tensors))
	for _, name := range f.Names() {
		v, shape, err := f.Float64s(name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrState, err)
		}
		state = append(state, Tensor{Name: name, Shape: shape, Data: v})
	}
	return m.LoadState(state)
}

// FromState builds the model that MarshalState encoded: same Config and
// dtype, parameters and buffers loaded, batch norms in training mode.
func FromState(b []byte) (*Model, error) {
	f, err := safetensors.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(f.Metadata[metaConfig]), &cfg); err != nil {
		return nil, fmt.Errorf("%w: metadata %s: %w", ErrState, metaConfig, err)
	}
	var dt tensor.Dtype
	switch f.Metadata[metaDtype] {
	case tensor.Float32.String():
		dt = tensor.Float32
	case tensor.Float64.String():
		dt = tensor.Float64
	default:
		return nil, fmt.Errorf("%w: metadata %s = %q", ErrState, metaDtype, f.Metadata[metaDtype])
	}
	m, err := New(cfg, dt, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	if err := m.UnmarshalState(b); err != nil {
		return nil, err
	}
	return m, nil
}
