package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/statedict"
)

// Save encodes the whole training state as a safetensors checkpoint:
// parameters and batch-norm buffers under their PyTorch state_dict names,
// the optimizer's momentum buffers, the step count, epoch (the last one
// completed, as the caller counts) and the configuration. Resuming from it
// continues exactly where the run stopped.
func (t *Core) Save(epoch int, extra map[string]string) ([]byte, error) {
	s, err := t.state(epoch, extra)
	if err != nil {
		return nil, err
	}
	return checkpoint.Encode(s)
}

// state gathers the model's state and the momentum buffers in the model's
// dtype, as they are stored.
func (t *Core) state(epoch int, extra map[string]string) (checkpoint.State, error) {
	s := checkpoint.State{Tensors: t.model.State(), Momentum: map[string]statedict.Tensor{}}
	for name, buf := range t.opt.Buffers() {
		st, err := statedict.FromDense(buf)
		if err != nil {
			return s, fmt.Errorf("engine: momentum of %s: %w", name, err)
		}
		s.Momentum[name] = st
	}
	mj, err := json.Marshal(t.model.Config())
	if err != nil {
		return s, err
	}
	s.Meta = checkpoint.Meta{Step: t.steps, Epoch: epoch, DType: t.checkpointDType(), Model: mj, Optimizer: t.optimMeta,
		RNG: strconv.FormatInt(t.cfg.Seed, 10), Extra: extra}
	return s, nil
}

func (t *Core) checkpointDType() string {
	if t.dt == tensor.Float64 {
		return checkpoint.Float64
	}
	return checkpoint.Float32
}

// Load restores a state written by Save into this trainer. The checkpoint
// must match the model exactly (names, shapes, dtype); otherwise nothing
// changes and the error names the first offending tensor.
func (t *Core) Load(b []byte) (checkpoint.Meta, error) {
	s, err := checkpoint.Decode(b)
	if err != nil {
		return checkpoint.Meta{}, err
	}
	if want := t.checkpointDType(); s.Meta.DType != want {
		return checkpoint.Meta{}, fmt.Errorf("%w: checkpoint holds %s tensors, the trainer is configured for %s", checkpoint.ErrMismatch, s.Meta.DType, want)
	}
	if err := checkpoint.Check(s, append(t.model.ParamInfos(), t.model.BufferInfos()...)); err != nil {
		return checkpoint.Meta{}, err
	}
	bufs := map[string]*tensor.Dense{}
	for name, st := range s.Momentum {
		d, err := st.Dense()
		if err != nil {
			return checkpoint.Meta{}, fmt.Errorf("engine: momentum of %s: %w", name, err)
		}
		bufs[name] = d
	}
	if err := t.model.LoadState(s.Tensors); err != nil {
		return checkpoint.Meta{}, err
	}
	if err := t.opt.SetBuffers(bufs); err != nil {
		return checkpoint.Meta{}, err
	}
	t.steps = s.Meta.Step
	return s.Meta, nil
}

// optimizerMetaV1 is a checkpoint's supflow.optimizer metadata, as format
// version 1 lays it out: the method and the optimizer and schedule settings
// as New was given them, field for field what the former optim.Config and
// optim.Schedule marshalled to (whose JSON tags were the format). It is
// informational: Load does not read it.
type optimizerMetaV1 struct {
	Method string `json:"method"`
	Optim  struct {
		Momentum         float64 `json:"momentum"`
		WeightDecay      float64 `json:"weight_decay"`
		Nesterov         bool    `json:"nesterov,omitempty"`
		LARS             bool    `json:"lars,omitempty"`
		TrustCoefficient float64 `json:"trust_coefficient,omitempty"`
	} `json:"optim"`
	Schedule struct {
		BaseLR      float64 `json:"learning_rate,omitempty"`
		Epochs      int     `json:"epochs,omitempty"`
		Cosine      bool    `json:"cosine,omitempty"`
		DecayRate   float64 `json:"lr_decay_rate,omitempty"`
		DecayEpochs []int   `json:"lr_decay_epochs,omitempty"`
		Warm        bool    `json:"warm,omitempty"`
		BatchSize   int     `json:"batch_size,omitempty"`
		WarmEpochs  int     `json:"warm_epochs,omitempty"`
		WarmupFrom  float64 `json:"warmup_from,omitempty"`
	} `json:"schedule"`
}

// optimizerMetaV1Of describes c, as given to New. In format version 1 a
// missing trust_coefficient, lr_decay_rate, warmup_from or lr_decay_epochs
// meant optim's default (0.001, 0.1, 0.01, and 700, 800, 900), since they
// were not keys; they are now, with those defaults, so a value equal to
// its default is left out as before (pipeline.yaml's defaults write what
// they always did), and a step schedule records the milestones it uses
// unless they are 700, 800, 900 (an empty decay_epochs derives them from
// the epochs). Cosine decay does not use milestones and records only those
// given.
func optimizerMetaV1Of(c TrainConfig) optimizerMetaV1 {
	var m optimizerMetaV1
	m.Method = cmp.Or(c.Method, MethodSupCon)
	o, s := c.Optim, c.Schedule
	m.Optim.Momentum, m.Optim.WeightDecay, m.Optim.Nesterov = o.Momentum, o.WeightDecay, o.Nesterov
	m.Optim.LARS, m.Optim.TrustCoefficient = o.Optimizer == optim.OptimizerLARS, unlessDefault(o.TrustCoefficient, optim.DefaultTrustCoefficient)
	m.Schedule.BaseLR, m.Schedule.Epochs, m.Schedule.Cosine = s.BaseLR, s.Epochs, s.Decay == optim.DecayCosine
	m.Schedule.DecayRate, m.Schedule.DecayEpochs, m.Schedule.Warm = unlessDefault(s.DecayRate, optim.DefaultDecayRate), s.DecayEpochs, s.Warm
	m.Schedule.BatchSize, m.Schedule.WarmEpochs, m.Schedule.WarmupFrom = s.BatchSize, s.WarmEpochs, unlessDefault(s.WarmupFrom, optim.DefaultWarmupFrom)
	if !m.Schedule.Cosine && len(s.DecayEpochs) == 0 {
		m.Schedule.DecayEpochs = optim.DefaultDecayEpochs(s.Epochs)
	}
	if slices.Equal(m.Schedule.DecayEpochs, optim.DefaultDecayEpochs(optim.DefaultEpochs)) {
		m.Schedule.DecayEpochs = nil
	}
	return m
}

// unlessDefault is x, or 0 (left out of the metadata) when x is def.
func unlessDefault(x, def float64) float64 {
	if x == def {
		return 0
	}
	return x
}
