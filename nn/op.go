package nn

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Sentinel errors; every error of this package wraps one of them.
var (
	// ErrShape reports an input whose shape does not fit the op.
	ErrShape = errors.New("nn: shape mismatch")
	// ErrDtype reports an input that is neither float64 nor float32 or whose
	// dtype differs from the op's other inputs.
	ErrDtype = errors.New("nn: unsupported dtype")
	// ErrArg reports an invalid op argument (stride, padding, state).
	ErrArg = errors.New("nn: invalid argument")
)

type float interface{ ~float32 | ~float64 }

// lastID numbers op instances. Each op owns buffers and sometimes state, so
// no two instances may hash alike: gorgonia would merge their nodes.
var lastID atomic.Uint64

// opBase carries what every op of the package shares: a unique identity and
// the "pure function, fresh register" contract towards gorgonia's compiler.
type opBase struct {
	id   uint64
	name string
}

func newBase(format string, args ...any) opBase {
	return opBase{id: lastID.Add(1), name: fmt.Sprintf(format, args...)}
}

// ReturnsPtr is false: gorgonia must not alias a register onto our buffers.
func (b opBase) ReturnsPtr() bool { return false }

// CallsExtern is false even for BLAS users: true would make the compiler
// allocate a fresh output each run, defeating the persistent buffers.
func (b opBase) CallsExtern() bool     { return false }
func (b opBase) OverwritesInput() int  { return -1 }
func (b opBase) WriteHash(h hash.Hash) { fmt.Fprintf(h, "%s#%d", b.name, b.id) }
func (b opBase) String() string        { return b.name }

func (b opBase) Hashcode() uint32 {
	h := fnv.New32a()
	b.WriteHash(h)
	return h.Sum32()
}

// fnType builds the gorgonia type of an op whose inputs and output are
// tensors of the given ranks sharing one element type (the last is the output).
func fnType(ranks ...int) hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, len(ranks))
	for i, r := range ranks {
		ts[i] = &G.TensorType{Dims: r, Of: a}
	}
	return hm.NewFnType(ts...)
}

// shapes converts gorgonia's DimSizers to shapes, checking the count.
func shapes(want int, ds []G.DimSizer) ([]tensor.Shape, error) {
	if len(ds) != want {
		return nil, fmt.Errorf("%w: %d inputs, want %d", ErrShape, len(ds), want)
	}
	out := make([]tensor.Shape, len(ds))
	for i, d := range ds {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%w: input %d has no shape", ErrShape, i)
		}
		out[i] = s
	}
	return out, nil
}

// checkArity validates the number of runtime inputs.
func checkArity(op G.Op, inputs []G.Value) error {
	if len(inputs) != op.Arity() {
		return fmt.Errorf("%w: %v got %d inputs, want %d", ErrArg, op, len(inputs), op.Arity())
	}
	return nil
}

// dense returns input i as a contiguous *tensor.Dense of a supported dtype.
func dense(inputs []G.Value, i int) (*tensor.Dense, error) {
	d, ok := inputs[i].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%w: input %d is %T, want *tensor.Dense", ErrArg, i, inputs[i])
	}
	if dt := d.Dtype(); dt != tensor.Float64 && dt != tensor.Float32 {
		return nil, fmt.Errorf("%w: input %d has dtype %v", ErrDtype, i, dt)
	}
	if d.RequiresIterator() {
		return nil, fmt.Errorf("%w: input %d is not contiguous", ErrArg, i)
	}
	return d, nil
}

// denses fetches all inputs, requiring one common dtype and, where want[i] is
// non-nil, the exact shape want[i].
func denses(op G.Op, inputs []G.Value, want ...tensor.Shape) ([]*tensor.Dense, error) {
	if err := checkArity(op, inputs); err != nil {
		return nil, err
	}
	out := make([]*tensor.Dense, len(inputs))
	for i := range inputs {
		d, err := dense(inputs, i)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", op, err)
		}
		if i > 0 && d.Dtype() != out[0].Dtype() {
			return nil, fmt.Errorf("%w: %v: input %d is %v, input 0 is %v", ErrDtype, op, i, d.Dtype(), out[0].Dtype())
		}
		if i < len(want) && want[i] != nil && !d.Shape().Eq(want[i]) {
			return nil, fmt.Errorf("%w: %v: input %d has shape %v, want %v", ErrShape, op, i, d.Shape(), want[i])
		}
		out[i] = d
	}
	return out, nil
}

// buffer is an op-owned tensor reused across runs; it is reallocated only
// when the requested dtype or shape changes. After ShareBuffers it is a
// view of a slot whose storage other ops use while its value is dead.
type buffer struct {
	t    *tensor.Dense
	slot *slot
}

func (b *buffer) get(dt tensor.Dtype, shape tensor.Shape) *tensor.Dense {
	if b.t != nil && b.t.Dtype() == dt && b.t.Shape().Eq(shape) {
		return b.t
	}
	if s := b.slot; s != nil && s.dt == dt && shape.TotalSize() <= s.size {
		b.t = tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(s.backing(shape.TotalSize())))
		return b.t
	}
	b.t = tensor.New(tensor.Of(dt), tensor.WithShape(shape.Clone()...))
	return b.t
}

// owner is an op that writes its output into a buffer of its own.
type owner interface{ outBuffer() *buffer }

// data views a contiguous dense tensor of element type T as a slice.
func data[T float](t *tensor.Dense) []T {
	n := t.Shape().TotalSize()
	var z T
	if _, ok := any(z).(float64); ok {
		return any(t.Float64s()[:n]).([]T)
	}
	return any(t.Float32s()[:n]).([]T)
}

// apply adds op to the graph of its children, naming the failure.
func apply(op G.Op, children ...*G.Node) (*G.Node, error) {
	n, err := G.ApplyOp(op, children...)
	if err != nil {
		return nil, fmt.Errorf("nn: %v: %w", op, err)
	}
	return n, nil
}

// RunError returns err, as returned by a gorgonia machine's RunAll, in a
// form errors.Is and errors.As can see through: gorgonia wraps op failures
// in a VM error that exposes its cause only through an Err method.
func RunError(err error) error {
	if err == nil {
		return nil
	}
	if c, ok := err.(interface{ Err() error }); ok && c.Err() != nil {
		return &runError{msg: err.Error(), cause: c.Err()}
	}
	return err
}

type runError struct {
	msg   string
	cause error
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.cause }
