package probe

import (
	"errors"
	"fmt"
	"math"
)

var (
	// ErrInvalidInput marks feature sets and arguments that cannot be scored.
	ErrInvalidInput = errors.New("probe: invalid input")
	// ErrInvalidConfig marks a Config or KNNConfig that fails Validate.
	ErrInvalidConfig = errors.New("probe: invalid config")
	// ErrDiverged reports a linear probe whose loss became NaN or infinite,
	// usually because the learning rate is too high for unstandardized features.
	ErrDiverged = errors.New("probe: training diverged")
)

// Set is a labelled feature matrix: Len() rows of Dim features in X,
// row-major, and one label in [0, Classes) per row. Functions of this package
// only read a Set; callers must not modify it while one is running.
type Set struct {
	X       []float32
	Labels  []int
	Dim     int
	Classes int
}

// Len is the number of rows.
func (s Set) Len() int { return len(s.Labels) }

// validate checks shapes, label ranges and that every feature is finite;
// name says which set failed ("train", "test").
func (s Set) validate(name string) error {
	switch {
	case s.Dim <= 0:
		return fmt.Errorf("%w: %s set: dim %d, want > 0", ErrInvalidInput, name, s.Dim)
	case s.Classes < 2:
		return fmt.Errorf("%w: %s set: %d classes, want >= 2", ErrInvalidInput, name, s.Classes)
	case len(s.Labels) == 0:
		return fmt.Errorf("%w: %s set is empty", ErrInvalidInput, name)
	case len(s.X)%s.Dim != 0 || len(s.X)/s.Dim != len(s.Labels):
		return fmt.Errorf("%w: %s set: %d features do not form %d rows of dim %d",
			ErrInvalidInput, name, len(s.X), len(s.Labels), s.Dim)
	}
	for i, l := range s.Labels {
		if l < 0 || l >= s.Classes {
			return fmt.Errorf("%w: %s set: row %d has label %d, want [0, %d)", ErrInvalidInput, name, i, l, s.Classes)
		}
	}
	for i, v := range s.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: %s set: row %d feature %d is %v", ErrInvalidInput, name, i/s.Dim, i%s.Dim, v)
		}
	}
	return nil
}
