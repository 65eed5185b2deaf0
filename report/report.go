package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// ErrInvalid marks a Report whose sections contradict each other.
var ErrInvalid = errors.New("report: invalid report")

// Float is a measurement that may be missing: NaN (or ±Inf, say a diverged
// loss) encodes as JSON null, null decodes as NaN, and charts draw it as a
// gap.
type Float float64

// Missing is the Float of a value that was not measured.
var Missing = Float(math.NaN())

// Valid reports whether f is a finite number.
func (f Float) Valid() bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

// MarshalJSON writes f as a number, or null when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	if !f.Valid() {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Missing
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("report: float: %w", err)
	}
	*f = Float(v)
	return nil
}

// Report is everything known about one run. Every section may be empty; the
// HTML view leaves out what is missing.
type Report struct {
	RunID    string    `json:"run_id"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Dataset names the data, e.g. "cifar10".
	Dataset string `json:"dataset"`
	Model   Model  `json:"model"`
	// Method names the pretraining objective, e.g. "supcon", "simclr", "ce".
	Method string `json:"method"`
	// Pretrain is the training curve, one Point per logged step or epoch, in
	// the order logged.
	Pretrain []Point `json:"pretrain,omitempty"`
	// KNN is the kNN monitor's accuracy after each evaluated epoch.
	KNN []KNNPoint `json:"knn,omitempty"`
	// Linear is the final linear-probe result, nil if none ran.
	Linear *Linear `json:"linear,omitempty"`
	// Throughput is each pipeline stage's rate, in pipeline order.
	Throughput []Stage `json:"throughput,omitempty"`
	// Notes are free-form remarks, one paragraph each.
	Notes []string `json:"notes,omitempty"`
}

// Model summarises the encoder.
type Model struct {
	// Arch names the architecture, e.g. "resnet18".
	Arch string `json:"arch"`
	// Params counts trainable parameters.
	Params int64 `json:"params"`
}

// Point is one pretraining measurement; a Missing field was not measured.
type Point struct {
	// Step is the optimizer step the point was taken at: the charts' x axis.
	Step int64 `json:"step"`
	// Epoch is the (fractional) epoch at Step.
	Epoch           Float `json:"epoch"`
	Loss            Float `json:"loss"`
	LR              Float `json:"lr"`
	SamplesPerSec   Float `json:"samples_per_sec"`
	DataWaitSeconds Float `json:"data_wait_seconds"`
}

// KNNPoint is the kNN monitor's accuracy, as fractions in [0, 1], after an
// epoch.
type KNNPoint struct {
	Epoch int   `json:"epoch"`
	Top1  Float `json:"top1"`
	Top5  Float `json:"top5"`
}

// Linear is a linear-probe result on the test set. Accuracies are fractions
// in [0, 1].
type Linear struct {
	Top1 Float `json:"top1"`
	Top5 Float `json:"top5"`
	// Loss is the mean test cross-entropy.
	Loss Float `json:"loss"`
	// Classes names each class; empty means the classes go by index.
	Classes []string `json:"classes,omitempty"`
	// PerClass is each class's top-1 accuracy.
	PerClass []Float `json:"per_class,omitempty"`
	// Confusion counts test rows by [true class][predicted class].
	Confusion [][]int `json:"confusion,omitempty"`
	// Protocol is how the classifier was trained: "frozen" (fixed
	// centre-crop features) or "supcontrast" (a fresh augmented view per
	// step, SupContrast's main_linear.py); the kNN score always uses the
	// frozen features.
	Protocol string `json:"protocol,omitempty"`
}

// Stage is the throughput of one pipeline stage.
type Stage struct {
	Name          string `json:"name"`
	SamplesPerSec Float  `json:"samples_per_sec"`
}

// classCount is the number of classes the Linear section describes, 0 if
// it gives none.
func (l *Linear) classCount() int {
	return max(len(l.Classes), len(l.PerClass), len(l.Confusion))
}

// className is class c's name, or its index when unnamed.
func (l *Linear) className(c int) string {
	if c < len(l.Classes) && l.Classes[c] != "" {
		return l.Classes[c]
	}
	return fmt.Sprint(c)
}

// Validate reports the first inconsistency: per-class sections that
// disagree on the number of classes, a non-square or negative confusion
// matrix, or a stage without a name.
func (r *Report) Validate() error {
	if r == nil {
		return fmt.Errorf("%w: nil report", ErrInvalid)
	}
	if l := r.Linear; l != nil {
		n := l.classCount()
		for _, f := range []struct {
			name string
			got  int
		}{{"classes", len(l.Classes)}, {"per_class", len(l.PerClass)}, {"confusion", len(l.Confusion)}} {
			if f.got != 0 && f.got != n {
				return fmt.Errorf("%w: linear %s has %d entries, want %d classes", ErrInvalid, f.name, f.got, n)
			}
		}
		for i, row := range l.Confusion {
			if len(row) != n {
				return fmt.Errorf("%w: linear confusion row %d has %d columns, want %d", ErrInvalid, i, len(row), n)
			}
			for j, v := range row {
				if v < 0 {
					return fmt.Errorf("%w: linear confusion[%d][%d] = %d is negative", ErrInvalid, i, j, v)
				}
			}
		}
	}
	for i, s := range r.Throughput {
		if s.Name == "" {
			return fmt.Errorf("%w: throughput entry %d has no stage name", ErrInvalid, i)
		}
	}
	return nil
}

// WriteJSON validates r and writes it to w as indented JSON (report.json).
func WriteJSON(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report: write json: %w", err)
	}
	return nil
}

// ReadJSON decodes a report written by WriteJSON and validates it.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("report: read json: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}
