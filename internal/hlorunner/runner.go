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

// ErrBuffer reports a buffer used after it was freed or donated, or one
// that another runner made.
var ErrBuffer = errors.New("hlorunner: invalid buffer")

// Runner runs programs in the evaluator. The zero value is ready.
type Runner struct{}

// New returns a runner.
func New() *Runner { return &Runner{} }

// Close does nothing: the evaluator holds no device.
func (*Runner) Close() error { return nil }

// Compile parses p.
func (*Runner) Compile(p *xla.Program) (xla.Executable, error) {
	prog, err := hloeval.Parse(string(p.Text))
	if err != nil {
		return nil, err
	}
	return &executable{prog: prog, outputs: p.Outputs}, nil
}

// Upload converts flat to the evaluator's float64 values, rounded to a's
// element type.
func (*Runner) Upload(a xla.Arg, flat any) (xla.Buffer, error) {
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
	return &buffer{t: hloeval.New(a.ElementType(), v, a.Shape...).Rounded()}, nil
}

func widen[T float32 | int32 | uint8](f []T) []float64 {
	v := make([]float64, len(f))
	for i, x := range f {
		v[i] = float64(x)
	}
	return v
}

type executable struct {
	prog    *hloeval.Program
	outputs []xla.Arg
}

// Run evaluates the program; donated inputs are marked consumed, as a
// device would reuse their storage.
func (e *executable) Run(in []xla.Buffer, donate []int) ([]xla.Buffer, error) {
	args := make([]*hloeval.Tensor, len(in))
	for i, b := range in {
		bb, ok := b.(*buffer)
		if !ok || bb.t == nil {
			return nil, fmt.Errorf("%w: input %d", ErrBuffer, i)
		}
		args[i] = bb.t
	}
	res, err := e.prog.Run(args...)
	if err != nil {
		return nil, err
	}
	for _, i := range donate {
		in[i].(*buffer).t = nil
	}
	out := make([]xla.Buffer, len(res))
	for i, t := range res {
		out[i] = &buffer{t: t}
	}
	return out, nil
}

type buffer struct{ t *hloeval.Tensor }

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
