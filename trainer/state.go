package trainer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/statedict"
)

// Save encodes the whole training state as a safetensors checkpoint:
// parameters and batch-norm buffers under their PyTorch state_dict names,
// the optimizer's momentum buffers, the step count, epoch (the last one
// completed, as the caller counts) and the configuration. Resuming from it
// continues exactly where the run stopped.
func (t *CPU) Save(epoch int, extra map[string]string) ([]byte, error) {
	s, err := t.state(epoch, extra)
	if err != nil {
		return nil, err
	}
	return checkpoint.Encode(s)
}

func (t *CPU) state(epoch int, extra map[string]string) (checkpoint.State, error) {
	s := checkpoint.State{Tensors: map[string]statedict.Tensor{}, Momentum: map[string]statedict.Tensor{}}
	f32 := t.cfg.DType != "float64"
	for _, v := range t.model.State() {
		ct := statedict.Tensor{Shape: slices.Clone(v.Shape)}
		switch {
		case len(v.Shape) == 0: // num_batches_tracked: an int64 counter, as in PyTorch
			ct.I64 = []int64{int64(v.Data[0])}
		case f32:
			ct.F32 = make([]float32, len(v.Data))
			for i, x := range v.Data {
				ct.F32[i] = float32(x)
			}
		default:
			ct.F64 = v.Data
		}
		s.Tensors[v.Name] = ct
	}
	for name, buf := range t.opt.Buffers() {
		ct, err := statedict.FromDense(buf)
		if err != nil {
			return s, fmt.Errorf("trainer: momentum of %s: %w", name, err)
		}
		s.Momentum[name] = ct
	}
	mj, err := json.Marshal(t.model.Config())
	if err != nil {
		return s, err
	}
	oj, err := json.Marshal(struct {
		Method string `json:"method"`
		Optim  any    `json:"optim"`
		Sched  any    `json:"schedule"`
	}{t.cfg.Method, t.cfg.Optim, t.cfg.Schedule})
	if err != nil {
		return s, err
	}
	dt := checkpoint.Float32
	if !f32 {
		dt = checkpoint.Float64
	}
	s.Meta = checkpoint.Meta{Step: t.steps, Epoch: epoch, DType: dt, Model: mj, Optimizer: oj,
		RNG: strconv.FormatInt(t.cfg.Seed, 10), Extra: extra}
	return s, nil
}

// Load restores a state written by Save into this trainer. The checkpoint
// must match the model exactly (names, shapes, dtype); otherwise nothing
// changes and the error names the first offending tensor.
func (t *CPU) Load(b []byte) (checkpoint.Meta, error) {
	s, err := checkpoint.Decode(b)
	if err != nil {
		return checkpoint.Meta{}, err
	}
	want := t.cfg.DType
	if want == "" {
		want = "float32"
	}
	if s.Meta.DType != want {
		return checkpoint.Meta{}, fmt.Errorf("%w: checkpoint holds %s tensors, the trainer is configured for %s", checkpoint.ErrMismatch, s.Meta.DType, want)
	}
	var expected []statedict.Info
	for _, in := range append(t.model.ParamInfos(), t.model.BufferInfos()...) {
		expected = append(expected, statedict.Info{Name: in.Name, Shape: in.Shape})
	}
	if err := checkpoint.Check(s, expected); err != nil {
		return checkpoint.Meta{}, err
	}
	state := make([]model.Tensor, 0, len(s.Tensors))
	for name, ct := range s.Tensors {
		state = append(state, model.Tensor{Name: name, Shape: ct.Shape, Data: float64s(ct)})
	}
	bufs := map[string]*tensor.Dense{}
	for name, ct := range s.Momentum {
		d, err := ct.Dense()
		if err != nil {
			return checkpoint.Meta{}, fmt.Errorf("trainer: momentum of %s: %w", name, err)
		}
		bufs[name] = d
	}
	if err := t.model.LoadState(state); err != nil {
		return checkpoint.Meta{}, err
	}
	if err := t.opt.SetBuffers(bufs); err != nil {
		return checkpoint.Meta{}, err
	}
	t.steps = s.Meta.Step
	return s.Meta, nil
}

// float64s widens whichever data slice ct holds.
func float64s(ct statedict.Tensor) []float64 {
	switch {
	case ct.F64 != nil:
		return ct.F64
	case ct.F32 != nil:
		out := make([]float64, len(ct.F32))
		for i, v := range ct.F32 {
			out[i] = float64(v)
		}
		return out
	}
	out := make([]float64, len(ct.I64))
	for i, v := range ct.I64 {
		out[i] = float64(v)
	}
	return out
}
