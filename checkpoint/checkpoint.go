package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/safetensors"
	"github.com/supflow/supflow/statedict"
)

// FormatVersion is the checkpoint layout version this package writes and
// reads.
const FormatVersion = 1

// MomentumPrefix prefixes the momentum buffer of each parameter.
const MomentumPrefix = "optimizer.momentum."

// reservedPrefix is kept free of model tensors so the PyTorch side can drop
// the optimizer state by prefix.
const reservedPrefix = "optimizer."

// Metadata keys.
const (
	keyFormat    = "format" // safetensors convention: "pt" marks PyTorch tensors
	keyVersion   = "supflow.format_version"
	keyStep      = "supflow.step"
	keyEpoch     = "supflow.epoch"
	keyDType     = "supflow.dtype"
	keyModel     = "supflow.model"
	keyOptimizer = "supflow.optimizer"
	keyRNG       = "supflow.rng"
	supflowKeys  = "supflow."
)

// Model dtypes.
const (
	Float32 = "float32"
	Float64 = "float64"
)

var (
	// ErrFormat is returned (wrapped) for a malformed checkpoint or state.
	ErrFormat = errors.New("checkpoint: malformed checkpoint")
	// ErrVersion is returned (wrapped) for a file that is not a supflow
	// checkpoint of a supported format version.
	ErrVersion = errors.New("checkpoint: unsupported format version")
	// ErrMismatch is returned (wrapped, as *MismatchError) when a
	// checkpoint's tensors do not match what the model expects.
	ErrMismatch = errors.New("checkpoint: tensors do not match the model")
)

// Meta is the non-tensor part of a training state.
type Meta struct {
	// Step is the number of optimizer steps taken.
	Step int64
	// Epoch is the current (1-based) or last completed epoch, as the
	// trainer defines it.
	Epoch int
	// DType is the model's float type, Float32 or Float64; every float
	// tensor must have it.
	DType string
	// Model and Optimizer are the configurations as JSON (optional).
	Model     json.RawMessage
	Optimizer json.RawMessage
	// RNG is the random-number state or seed, opaque to this package.
	RNG string
	// Extra holds other strings; keys must not be "format" or start with
	// "supflow.".
	Extra map[string]string
}

// State is a whole training state.
type State struct {
	// Tensors are the model's state_dict entries (parameters and buffers).
	Tensors map[string]statedict.Tensor
	// Momentum are the optimizer's momentum buffers by parameter name; each
	// name must be in Tensors with the same dtype and shape.
	Momentum map[string]statedict.Tensor
	Meta     Meta
}

// Encode serialises s as safetensors bytes.
func Encode(s State) ([]byte, error) {
	f, err := toFile(s)
	if err != nil {
		return nil, err
	}
	return f.Bytes()
}

func toFile(s State) (*safetensors.File, error) {
	if err := validate(s); err != nil {
		return nil, err
	}
	f := safetensors.New()
	for name, t := range s.Tensors {
		put(f, name, t)
	}
	for name, t := range s.Momentum {
		put(f, MomentumPrefix+name, t)
	}
	m := f.Metadata
	for k, v := range s.Meta.Extra {
		m[k] = v
	}
	m[keyFormat] = "pt"
	m[keyVersion] = strconv.Itoa(FormatVersion)
	m[keyStep] = strconv.FormatInt(s.Meta.Step, 10)
	m[keyEpoch] = strconv.Itoa(s.Meta.Epoch)
	m[keyDType] = s.Meta.DType
	if len(s.Meta.Model) > 0 {
		m[keyModel] = string(s.Meta.Model)
	}
	if len(s.Meta.Optimizer) > 0 {
		m[keyOptimizer] = string(s.Meta.Optimizer)
	}
	if s.Meta.RNG != "" {
		m[keyRNG] = s.Meta.RNG
	}
	return f, nil
}

func put(f *safetensors.File, name string, t statedict.Tensor) {
	switch {
	case t.F32 != nil:
		f.PutFloat32s(name, t.Shape, t.F32)
	case t.F64 != nil:
		f.PutFloat64s(name, t.Shape, t.F64)
	default:
		f.PutInt64s(name, t.Shape, t.I64)
	}
}

// Decode parses a checkpoint written by [Encode]. It checks the format
// version and the same invariants as Encode; tensor data is copied, so the
// state does not alias b.
func Decode(b []byte) (State, error) {
	f, err := safetensors.Parse(b)
	if err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	meta, err := decodeMeta(f.Metadata)
	if err != nil {
		return State{}, err
	}
	s := State{Tensors: map[string]statedict.Tensor{}, Momentum: map[string]statedict.Tensor{}, Meta: meta}
	for name, st := range f.Tensors {
		t, err := fromSafetensors(name, st)
		if err != nil {
			return State{}, err
		}
		if p, ok := strings.CutPrefix(name, MomentumPrefix); ok {
			s.Momentum[p] = t
		} else {
			s.Tensors[name] = t
		}
	}
	if err := validate(s); err != nil {
		return State{}, err
	}
	return s, nil
}

// fromSafetensors copies a tensor out of the parsed file (whose Parse
// already matched the byte length to the shape).
func fromSafetensors(name string, st safetensors.Tensor) (statedict.Tensor, error) {
	t := statedict.Tensor{Shape: append([]int{}, st.Shape...)}
	le := binary.LittleEndian
	n := len(st.Data) / max(st.DType.Size(), 1)
	switch st.DType {
	case safetensors.F32:
		t.F32 = make([]float32, n)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(le.Uint32(st.Data[4*i:]))
		}
	case safetensors.F64:
		t.F64 = make([]float64, n)
		for i := range t.F64 {
			t.F64[i] = math.Float64frombits(le.Uint64(st.Data[8*i:]))
		}
	case safetensors.I64:
		t.I64 = make([]int64, n)
		for i := range t.I64 {
			t.I64[i] = int64(le.Uint64(st.Data[8*i:]))
		}
	default:
		return statedict.Tensor{}, fmt.Errorf("%w: tensor %q has dtype %s, want F32, F64 or I64", ErrFormat, name, st.DType)
	}
	return t, nil
}

func decodeMeta(m map[string]string) (Meta, error) {
	v, ok := m[keyVersion]
	if !ok {
		return Meta{}, fmt.Errorf("%w: no %s metadata: not a supflow checkpoint", ErrVersion, keyVersion)
	}
	if v != strconv.Itoa(FormatVersion) {
		return Meta{}, fmt.Errorf("%w: format version %q, this build reads %d", ErrVersion, v, FormatVersion)
	}
	var meta Meta
	var err error
	if meta.Step, err = strconv.ParseInt(m[keyStep], 10, 64); err != nil {
		return Meta{}, fmt.Errorf("%w: %s %q: %w", ErrFormat, keyStep, m[keyStep], err)
	}
	if meta.Epoch, err = strconv.Atoi(m[keyEpoch]); err != nil {
		return Meta{}, fmt.Errorf("%w: %s %q: %w", ErrFormat, keyEpoch, m[keyEpoch], err)
	}
	meta.DType = m[keyDType]
	if s, ok := m[keyModel]; ok {
		meta.Model = json.RawMessage(s)
	}
	if s, ok := m[keyOptimizer]; ok {
		meta.Optimizer = json.RawMessage(s)
	}
	meta.RNG = m[keyRNG]
	for k, v := range m {
		if k == keyFormat || strings.HasPrefix(k, supflowKeys) {
			continue
		}
		if meta.Extra == nil {
			meta.Extra = map[string]string{}
		}
		meta.Extra[k] = v
	}
	return meta, nil
}

// validate checks the invariants Encode guarantees and Decode enforces.
func validate(s State) error {
	m := s.Meta
	if m.DType != Float32 && m.DType != Float64 {
		return fmt.Errorf("%w: model dtype %q, want %q or %q", ErrFormat, m.DType, Float32, Float64)
	}
	if m.Step < 0 || m.Epoch < 0 {
		return fmt.Errorf("%w: negative step %d or epoch %d", ErrFormat, m.Step, m.Epoch)
	}
	if len(m.Model) > 0 && !json.Valid(m.Model) {
		return fmt.Errorf("%w: model config is not valid JSON", ErrFormat)
	}
	if len(m.Optimizer) > 0 && !json.Valid(m.Optimizer) {
		return fmt.Errorf("%w: optimizer config is not valid JSON", ErrFormat)
	}
	for k := range m.Extra {
		if k == keyFormat || strings.HasPrefix(k, supflowKeys) {
			return fmt.Errorf("%w: extra metadata key %q is reserved", ErrFormat, k)
		}
	}
	floatDtype := tensor.Float32
	if m.DType == Float64 {
		floatDtype = tensor.Float64
	}
	if len(s.Tensors) == 0 {
		return fmt.Errorf("%w: no tensors", ErrFormat)
	}
	for _, name := range sortedNames(s.Tensors) {
		t := s.Tensors[name]
		if name == "" || name == "__metadata__" || strings.HasPrefix(name, reservedPrefix) {
			return fmt.Errorf("%w: tensor name %q is reserved", ErrFormat, name)
		}
		if err := checkTensor(name, t, floatDtype); err != nil {
			return err
		}
	}
	for _, name := range sortedNames(s.Momentum) {
		t := s.Momentum[name]
		p, ok := s.Tensors[name]
		if !ok {
			return fmt.Errorf("%w: momentum buffer for unknown tensor %q", ErrFormat, name)
		}
		if err := checkTensor(MomentumPrefix+name, t, floatDtype); err != nil {
			return err
		}
		if t.I64 != nil {
			return fmt.Errorf("%w: momentum buffer of %q is I64; only float tensors have one", ErrFormat, name)
		}
		if t.Dtype() != p.Dtype() || !slices.Equal(t.Shape, p.Shape) {
			return fmt.Errorf("%w: momentum buffer of %q is %v %v, the tensor is %v %v",
				ErrFormat, name, t.Dtype(), t.Shape, p.Dtype(), p.Shape)
		}
	}
	return nil
}

// checkTensor checks t's invariants and that it is I64 or of the
// checkpoint's float dtype.
func checkTensor(name string, t statedict.Tensor, floatDtype tensor.Dtype) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("%w: tensor %q: %w", ErrFormat, name, err)
	}
	if dt := t.Dtype(); dt != tensor.Int64 && dt != floatDtype {
		return fmt.Errorf("%w: tensor %q is %v in a %v checkpoint", ErrFormat, name, dt, floatDtype)
	}
	return nil
}

func sortedNames(m map[string]statedict.Tensor) []string {
	return slices.Sorted(maps.Keys(m))
}

// WriteFile writes s to path atomically: the bytes go to a temporary file in
// the same folder, which is synced and renamed over path, and the folder is
// synced, so a crash leaves either the old checkpoint or the new one.
func WriteFile(path string, s State) error {
	b, err := Encode(s)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint: close %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: sync folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("checkpoint: sync folder %s: %w", dir, err)
	}
	return nil
}

// ReadFile reads and decodes the checkpoint at path.
func ReadFile(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, fmt.Errorf("checkpoint: %w", err)
	}
	s, err := Decode(b)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
