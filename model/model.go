package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/nn"
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

// Info names a tensor and gives its shape ([] for a scalar).
type Info struct {
	Name  string
	Shape []int
}

// BatchNorm is one batch-norm layer: its state_dict prefix (for example
// "encoder.layer1.0.bn1") and its mode and running statistics.
type BatchNorm struct {
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
	bns    []BatchNorm
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
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		return nil, fmt.Errorf("%w: dtype %v: want float32 or float64", ErrConfig, dtype)
	}
	cfg.setDefaults()
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
			m.bns = append(m.bns, BatchNorm{Name: l.name, State: nn.NewBNState(l.c)})
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
func (m *Model) Config() Config { return m.cfg }

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

// BatchNorms returns the batch-norm layers in model order.
func (m *Model) BatchNorms() []BatchNorm { return append([]BatchNorm(nil), m.bns...) }

// ParamInfos lists the parameter names and shapes in PyTorch order.
func (m *Model) ParamInfos() []Info {
	out := make([]Info, len(m.params))
	for i, p := range m.params {
		out[i] = Info{Name: p.Name, Shape: p.Shape()}
	}
	return out
}

// BufferInfos lists the batch-norm buffers (running_mean, running_var,
// num_batches_tracked of each layer) in PyTorch order.
func (m *Model) BufferInfos() []Info {
	var out []Info
	for _, e := range m.order {
		if e.param < 0 {
			out = append(out, Info{Name: m.bns[e.bn].Name + "." + e.kind, Shape: m.bufferShape(e)})
		}
	}
	return out
}

func (m *Model) bufferShape(e stateEntry) []int {
	if e.kind == NumBatchesTracked {
		return []int{}
	}
	return []int{m.bns[e.bn].State.Channels()}
}

// SetTraining switches every batch norm to training (true) or eval mode;
// running statistics are kept.
func (m *Model) SetTraining(training bool) {
	for _, b := range m.bns {
		b.State.Training = training
	}
}

// Tensor is a named float64 copy of a parameter or buffer, row-major.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float64
}

// State returns a float64 copy of every parameter and buffer in PyTorch
// state_dict order; num_batches_tracked is a scalar holding the count.
func (m *Model) State() []Tensor {
	out := make([]Tensor, 0, len(m.order))
	for _, e := range m.order {
		if e.param >= 0 {
			p := m.params[e.param]
			out = append(out, Tensor{Name: p.Name, Shape: p.Shape(), Data: toFloat64s(p.Value)})
			continue
		}
		st := m.bns[e.bn].State
		t := Tensor{Name: m.bns[e.bn].Name + "." + e.kind, Shape: m.bufferShape(e)}
		switch e.kind {
		case RunningMean:
			t.Data = append([]float64(nil), st.RunningMean...)
		case RunningVar:
			t.Data = append([]float64(nil), st.RunningVar...)
		case NumBatchesTracked:
			t.Data = []float64{float64(st.NumBatchesTracked)}
		}
		out = append(out, t)
	}
	return out
}

// LoadState replaces every parameter and buffer with the tensors of state,
// which must name each exactly once with its exact shape. Nothing changes
// when an error (naming the offending tensor) is returned.
func (m *Model) LoadState(state []Tensor) error {
	want := map[string][]int{}
	for _, in := range append(m.ParamInfos(), m.BufferInfos()...) {
		want[in.Name] = in.Shape
	}
	seen := map[string]bool{}
	for _, t := range state {
		shape, ok := want[t.Name]
		switch {
		case !ok:
			return fmt.Errorf("%w: unknown tensor %q", ErrState, t.Name)
		case seen[t.Name]:
			return fmt.Errorf("%w: tensor %q given twice", ErrState, t.Name)
		case !slices.Equal(t.Shape, shape):
			return fmt.Errorf("%w: tensor %q has shape %v, model wants %v", ErrState, t.Name, t.Shape, shape)
		case len(t.Data) != tensor.Shape(shape).TotalSize():
			return fmt.Errorf("%w: tensor %q has %d values for shape %v", ErrState, t.Name, len(t.Data), shape)
		}
		if len(shape) == 0 {
			if n := t.Data[0]; n < 0 || n != math.Trunc(n) {
				return fmt.Errorf("%w: tensor %q = %v is not a count", ErrState, t.Name, n)
			}
		}
		seen[t.Name] = true
	}
	for _, in := range append(m.ParamInfos(), m.BufferInfos()...) {
		if !seen[in.Name] {
			return fmt.Errorf("%w: tensor %q missing", ErrState, in.Name)
		}
	}
	for _, t := range state {
		if i, ok := m.index[t.Name]; ok {
			fromFloat64s(m.params[i].Value, t.Data)
			continue
		}
		for _, kind := range []string{RunningMean, RunningVar, NumBatchesTracked} {
			prefix, ok := strings.CutSuffix(t.Name, "."+kind)
			if !ok {
				continue
			}
			st := m.bns[m.bnByID[prefix]].State
			switch kind {
			case RunningMean:
				copy(st.RunningMean, t.Data)
			case RunningVar:
				copy(st.RunningVar, t.Data)
			case NumBatchesTracked:
				st.NumBatchesTracked = int64(t.Data[0])
			}
		}
	}
	return nil
}

func toFloat64s(t *tensor.Dense) []float64 {
	switch v := t.Data().(type) {
	case []float64:
		return append([]float64(nil), v...)
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	return nil
}

func fromFloat64s(t *tensor.Dense, src []float64) {
	switch v := t.Data().(type) {
	case []float64:
		copy(v, src)
	case []float32:
		for i, x := range src {
			v[i] = float32(x)
		}
	}
}
