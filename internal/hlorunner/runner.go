// Package hlorunner is an xla.Runner on the pure-Go StableHLO evaluator
// (internal/hloeval): it runs the XLA backend's programs on the CPU, slowly
// and exactly, so that tests prove the backend without a device. Tests and
// in-repo tools only; it must not import engine or any stage.
package hlorunner

import (
	"errors"
	"fmt"

	"github.com/supflow/supflow/internal/hloeval"
	"github.com/supflow/supflow/xla"
)

// ErrBuffer reports a buffer used after it was freed or donated, one that
// another runner made or one on another device than its replica's.
var ErrBuffer = errors.New("hlorunner: invalid buffer")

// Runner runs programs in the evaluator, a data-parallel one's replicas in
// lockstep (hloeval.Program.RunReplicas). The zero value is ready, with
// one device.
type Runner struct{ devices int }

// Option configures a Runner.
type Option func(*Runner)

// WithDevices makes a runner of n devices (default 1): buffers remember
// their device, so that a replica given another device's input fails as
// on hardware.
func WithDevices(n int) Option { return func(r *Runner) { r.devices = n } }

// New returns a runner.
func New(opts ...Option) *Runner {
	r := &Runner{}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Devices is the number of devices WithDevices set, at least 1.
func (r *Runner) Devices() int { return max(r.devices, 1) }

// Close does nothing: the evaluator holds no device.
func (*Runner) Close() error { return nil }

// Compile parses p.
func (*Runner) Compile(p *xla.Program) (xla.Executable, error) {
	prog, err := hloeval.Parse(string(p.Text))
	if err != nil {
		return nil, err
	}
	return &executable{prog: prog, inputs: len(p.Inputs), replicas: max(p.Replicas, 1)}, nil
}

// Upload converts flat to the evaluator's float64 values, rounded to a's
// element type.
func (r *Runner) Upload(device int, a xla.Arg, flat any) (xla.Buffer, error) {
	if device < 0 || device >= r.Devices() {
		return nil, fmt.Errorf("hlorunner: upload %s: device %d of %d", a.Name, device, r.Devices())
	}
	var v []float64
	switch f := flat.(type) {
	case []float64:
		v = append([]float64(nil), f...)
	case []float32:
		v = widen(f)
	case []int32:
		v = widen(f)
	case []uint8:
		v = widen(f)
	default:
		return nil, fmt.Errorf("hlorunner: upload %s: values of type %T", a.Name, flat)
	}
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	if len(v) != n {
		return nil, fmt.Errorf("hlorunner: upload %s: %d values for shape %v", a.Name, len(v), a.Shape)
	}
	return &buffer{t: hloeval.New(a.ElementType(), v, a.Shape...).Rounded(), device: device}, nil
}

func widen[T float32 | int32 | uint8](f []T) []float64 {
	v := make([]float64, len(f))
	for i, x := range f {
		v[i] = float64(x)
	}
	return v
}

type executable struct {
	prog             *hloeval.Program
	inputs, replicas int
}

// Run evaluates the program on every replica; donated inputs are marked
// consumed, as a device would reuse their storage.
func (e *executable) Run(in []xla.Buffer, donate []int) ([]xla.Buffer, error) {
	if len(in) != e.inputs*e.replicas {
		return nil, fmt.Errorf("hlorunner: %d inputs for %d replicas of %d", len(in), e.replicas, e.inputs)
	}
	args := make([][]*hloeval.Tensor, e.replicas)
	for i, b := range in {
		r := i / e.inputs
		bb, ok := b.(*buffer)
		if !ok || bb.t == nil || bb.device != r {
			return nil, fmt.Errorf("%w: replica %d's input %d", ErrBuffer, r, i%e.inputs)
		}
		args[r] = append(args[r], bb.t)
	}
	res, err := e.prog.RunReplicas(args)
	if err != nil {
		return nil, err
	}
	var out []xla.Buffer
	for r, ts := range res {
		for _, i := range donate {
			in[r*e.inputs+i].(*buffer).t = nil
		}
		for _, t := range ts {
			out = append(out, &buffer{t: t, device: r})
		}
	}
	return out, nil
}

type buffer struct {
	t      *hloeval.Tensor
	device int
}

func (b *buffer) Download() ([]float64, error) {
	if b.t == nil {
		return nil, ErrBuffer
	}
	return append([]float64(nil), b.t.Data...), nil
}

func (b *buffer) Free() error {
	b.t = nil
	return nil
}
