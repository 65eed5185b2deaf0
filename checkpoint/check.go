package checkpoint

import (
	"fmt"
	"slices"

	"github.com/supflow/supflow/statedict"
)

// MismatchError names the first tensor that keeps a checkpoint from
// loading into a model. It matches ErrMismatch under errors.Is.
type MismatchError struct {
	// Name is the offending tensor (for a momentum buffer, the
	// "optimizer.momentum." name).
	Name string
	// Want is the model's shape (nil when the model has no such tensor).
	Want []int
	// Got is the checkpoint's shape (nil when the checkpoint lacks it).
	Got []int
	// Missing is true when the checkpoint lacks the tensor, Unexpected
	// when the model does not know it.
	Missing, Unexpected bool
}

func (e *MismatchError) Error() string {
	switch {
	case e.Missing:
		return fmt.Sprintf("checkpoint: tensor %q (model shape %v) is missing from the checkpoint", e.Name, e.Want)
	case e.Unexpected:
		return fmt.Sprintf("checkpoint: tensor %q (checkpoint shape %v) is not in the model", e.Name, e.Got)
	}
	return fmt.Sprintf("checkpoint: tensor %q has shape %v in the checkpoint, the model wants %v", e.Name, e.Got, e.Want)
}

// Unwrap returns ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Check reports whether s holds exactly the tensors expected, with the
// expected shapes, and only momentum buffers of expected tensors. It returns
// a *MismatchError for the first offence: expected tensors in the given
// order first, then unexpected checkpoint tensors in name order, then
// momentum buffers in name order.
func Check(s State, expected []statedict.Info) error {
	want := make(map[string][]int, len(expected))
	for _, e := range expected {
		want[e.Name] = e.Shape
		t, ok := s.Tensors[e.Name]
		if !ok {
			return &MismatchError{Name: e.Name, Want: e.Shape, Missing: true}
		}
		if !slices.Equal(t.Shape, e.Shape) {
			return &MismatchError{Name: e.Name, Want: e.Shape, Got: t.Shape}
		}
	}
	for _, name := range sortedNames(s.Tensors) {
		if _, ok := want[name]; !ok {
			return &MismatchError{Name: name, Got: s.Tensors[name].Shape, Unexpected: true}
		}
	}
	for _, name := range sortedNames(s.Momentum) {
		shape, ok := want[name]
		got := s.Momentum[name].Shape
		if !ok {
			return &MismatchError{Name: MomentumPrefix + name, Got: got, Unexpected: true}
		}
		if !slices.Equal(got, shape) {
			return &MismatchError{Name: MomentumPrefix + name, Want: shape, Got: got}
		}
	}
	return nil
}
