package model

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
	"github.com/supflow/supflow/statedict"
)

// Sentinel errors; every error of this package wraps one of them.
var (
	// ErrConfig reports an invalid Config or dtype.
	ErrConfig = errors.New("model: invalid config")
	// ErrState reports a state (parameters and buffers) that does not fit
	// the model.
	ErrState = errors.New("model: state mismatch")
	// ErrInput reports an input batch the model cannot take.
	ErrInput = errors.New("model: invalid input")
)

// Param is one learnable tensor. Value is the model's own tensor: graphs
// read it on every run, and an optimizer updates it in place.
type Param struct {
	Name  string
	Value *tensor.Dense
}

// Shape returns the parameter's shape.
func (p Param) Shape() []int { return p.Value.Shape().Clone() }

// batchNorm is one batch-norm layer: its state_dict prefix (for example
// "encoder.layer1.0.bn1") and its mode and running statistics.
type batchNorm struct {
	Name  string
	State *nn.BNState
}

// Buffer suffixes of a batch-norm layer, in state_dict order.
const (
	RunningMean       = "running_mean"
	RunningVar        = "running_var"
	NumBatchesTracked = "num_batches_tracked"
)

// Model is a SupConResNet: its architecture, parameter tensors and
// batch-norm states. It is not safe for concurrent use.
type Model struct {
	cfg    Config
	dtype  tensor.Dtype
	arch   arch
	params []Param
	index  map[string]int // parameter name -> index in params
	bns    []batchNorm
	bnByID map[string]int // layer prefix -> index in bns
	order  []stateEntry   // state_dict order
	cache  map[[3]int]*runner
}

// stateEntry is one state_dict entry: a parameter, or buffer kind of a BN.
type stateEntry struct {
	param int    // index in params, or -1
	bn    int    // index in bns when param < 0
	kind  string // buffer suffix when param < 0
}

// New builds a model with freshly initialised parameters: Kaiming-normal
// (fan-out, ReLU gain) convolution weights, batch-norm weight 1 and bias 0,
// PyTorch's default Linear initialisation U(-1/sqrt(in), 1/sqrt(in)), all
// drawn from a random stream seeded by seed. dtype is tensor.Float32 or
// tensor.Float64. Batch norms start in training mode.
func New(cfg Config, dtype tensor.Dtype, seed int64) (*Model, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		return nil, fmt.Errorf("%w: dtype %v: want float32 or float64", ErrConfig, dtype)
	}
	m := &Model{
		cfg:    cfg,
		dtype:  dtype,
		arch:   newArch(cfg),
		index:  map[string]int{},
		bnByID: map[string]int{},
		cache:  map[[3]int]*runner{},
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_c0de))
	m.arch.walk(func(l any) {
		switch l := l.(type) {
		case convLayer:
			std := math.Sqrt(2 / float64(l.cout*l.k*l.k))
			m.addParam(l.name+".weight", []int{l.cout, l.cin, l.k, l.k}, func() float64 { return std * rng.NormFloat64() })
		case bnLayer:
			m.addParam(l.name+".weight", []int{l.c}, func() float64 { return 1 })
			m.addParam(l.name+".bias", []int{l.c}, func() float64 { return 0 })
			m.bnByID[l.name] = len(m.bns)
			m.bns = append(m.bns, batchNorm{Name: l.name, State: nn.NewBNState(l.c)})
			for _, kind := range []string{RunningMean, RunningVar, NumBatchesTracked} {
				m.order = append(m.order, stateEntry{param: -1, bn: len(m.bns) - 1, kind: kind})
			}
		case linearLayer:
			bound := 1 / math.Sqrt(float64(l.in))
			uniform := func() float64 { return bound * (2*rng.Float64() - 1) }
			m.addParam(l.name+".weight", []int{l.out, l.in}, uniform)
			m.addParam(l.name+".bias", []int{l.out}, uniform)
		}
	})
	return m, nil
}

func (m *Model) addParam(name string, shape []int, init func() float64) {
	t := tensor.New(tensor.Of(m.dtype), tensor.WithShape(shape...))
	switch v := t.Data().(type) {
	case []float64:
		for i := range v {
			v[i] = init()
		}
	case []float32:
		for i := range v {
			v[i] = float32(init())
		}
	}
	m.index[name] = len(m.params)
	// Parameters precede the buffers of the same layer in a state_dict.
	m.order = append(m.order, stateEntry{param: len(m.params)})
	m.params = append(m.params, Param{Name: name, Value: t})
}

// Config returns the configuration with defaults applied and widths and
// blocks resolved.
func (m *Model) Config() Config {
	c := m.cfg
	c.Widths, c.Blocks = slices.Clone(c.Widths), slices.Clone(c.Blocks)
	return c
}

// Dtype returns the element type of the parameters and graphs.
func (m *Model) Dtype() tensor.Dtype { return m.dtype }

// EncoderDim is the size d of the encoder features (expansion * last width).
func (m *Model) EncoderDim() int { return m.cfg.expansion() * m.cfg.Widths[3] }

// Params returns the parameters in PyTorch's model.parameters() order. The
// slice is a copy; the tensors are the model's own.
func (m *Model) Params() []Param { return append([]Param(nil), m.params...) }

// Param returns the parameter called name.
func (m *Model) Param(name string) (Param, bool) {
	i, ok := m.index[name]
	if !ok {
		return Param{}, false
	}
	return m.params[i], true
}

// ParamInfos lists the parameter names and shapes in PyTorch order.
func (m *Model) ParamInfos() []statedict.Info {
	out := make([]statedict.Info, len(m.params))
	for i, p := range m.params {
		out[i] = statedict.Info{Name: p.Name, Shape: p.Shape()}
	}
	return out
}

// BufferInfos lists the batch-norm buffers (running_mean, running_var,
// num_batches_tracked of each layer) in PyTorch order.
func (m *Model) BufferInfos() []statedict.Info {
	var out []statedict.Info
	for _, e := range m.order {
		if e.param < 0 {
			out = append(out, m.info(e))
		}
	}
	return out
}

// info names the state_dict entry e and gives its shape.
func (m *Model) info(e stateEntry) statedict.Info {
	if e.param >= 0 {
		p := m.params[e.param]
		return statedict.Info{Name: p.Name, Shape: p.Shape()}
	}
	bn := m.bns[e.bn]
	if e.kind == NumBatchesTracked {
		return statedict.Info{Name: bn.Name + "." + e.kind, Shape: []int{}}
	}
	return statedict.Info{Name: bn.Name + "." + e.kind, Shape: []int{bn.State.Channels()}}
}

// SetTraining switches every batch norm to training (true) or eval mode;
// running statistics are kept.
func (m *Model) SetTraining(training bool) {
	for _, b := range m.bns {
		b.State.Training = training
	}
}

// State returns a copy of every parameter and buffer keyed by state_dict
// name (ParamInfos and BufferInfos give PyTorch's order), as torch's
// state_dict holds them: parameters and running statistics in the model's
// dtype, num_batches_tracked as an int64 scalar.
func (m *Model) State() map[string]statedict.Tensor {
	out := make(map[string]statedict.Tensor, len(m.order))
	for _, p := range m.params {
		t := statedict.Tensor{Shape: p.Shape()}
		switch v := p.Value.Data().(type) {
		case []float32:
			t.F32 = slices.Clone(v)
		case []float64:
			t.F64 = slices.Clone(v)
		}
		out[p.Name] = t
	}
	for _, bn := range m.bns {
		st, shape := bn.State, []int{bn.State.Channels()}
		out[bn.Name+"."+RunningMean] = m.statistics(shape, st.RunningMean)
		out[bn.Name+"."+RunningVar] = m.statistics(shape, st.RunningVar)
		out[bn.Name+"."+NumBatchesTracked] = statedict.Tensor{Shape: []int{}, I64: []int64{st.NumBatchesTracked}}
	}
	return out
}

// statistics copies running statistics, which nn keeps in float64, into a
// Tensor of the model's dtype. nn rounds every update to the dtype of the
// data, so the float32 copy is exact.
func (m *Model) statistics(shape []int, v []float64) statedict.Tensor {
	if m.dtype == tensor.Float64 {
		return statedict.Tensor{Shape: shape, F64: slices.Clone(v)}
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return statedict.Tensor{Shape: shape, F32: f}
}

// LoadState replaces every parameter and buffer with a copy of the tensors
// of state, which must hold exactly the model's state_dict names, each with
// its shape and State's element type (the model's dtype, int64 for
// num_batches_tracked, which must not be negative). Nothing changes when an
// error (naming the offending tensor) is returned.
func (m *Model) LoadState(state map[string]statedict.Tensor) error {
	known := make(map[string]bool, len(m.order))
	for _, e := range m.order {
		in := m.info(e)
		known[in.Name] = true
		t, ok := state[in.Name]
		if !ok {
			return fmt.Errorf("%w: tensor %q missing", ErrState, in.Name)
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("%w: tensor %q: %w", ErrState, in.Name, err)
		}
		if !slices.Equal(t.Shape, in.Shape) {
			return fmt.Errorf("%w: tensor %q has shape %v, model wants %v", ErrState, in.Name, t.Shape, in.Shape)
		}
		want := m.dtype
		if e.kind == NumBatchesTracked {
			want = tensor.Int64
		}
		if t.Dtype() != want {
			return fmt.Errorf("%w: tensor %q holds %v, model wants %v", ErrState, in.Name, t.Dtype(), want)
		}
		if want == tensor.Int64 && t.I64[0] < 0 {
			return fmt.Errorf("%w: tensor %q = %d is not a count", ErrState, in.Name, t.I64[0])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(state)) {
		if !known[name] {
			return fmt.Errorf("%w: unknown tensor %q", ErrState, name)
		}
	}
	for _, p := range m.params {
		switch v := p.Value.Data().(type) {
		case []float32:
			copy(v, state[p.Name].F32)
		case []float64:
			copy(v, state[p.Name].F64)
		}
	}
	for _, bn := range m.bns {
		st := bn.State
		setStatistics(st.RunningMean, state[bn.Name+"."+RunningMean])
		setStatistics(st.RunningVar, state[bn.Name+"."+RunningVar])
		st.NumBatchesTracked = state[bn.Name+"."+NumBatchesTracked].I64[0]
	}
	return nil
}

// setStatistics copies running statistics of the model's dtype into nn's
// float64 ones.
func setStatistics(dst []float64, t statedict.Tensor) {
	if t.F64 != nil {
		copy(dst, t.F64)
		return
	}
	for i, x := range t.F32 {
		dst[i] = float64(x)
	}
}
