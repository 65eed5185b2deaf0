package xla_test

import (
	"errors"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
	"github.com/supflow/supflow/xla"
)

// TestStepErrors: configurations the lowering does not cover are refused
// with ErrLower (or the owning package's error), never emitted.
func TestStepErrors(t *testing.T) {
	m, err := model.New(model.Config{Widths: []int{2, 2, 2, 2}, Blocks: []int{1, 1, 1, 1}, FeatDim: 4}, tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	ok := xla.StepConfig{Batch: xla.Batch{Rows: 4, Channels: 3, Height: 8, Width: 8}, Views: 2}
	if _, err := xla.Step(m, ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, change := range map[string]func(c *xla.StepConfig){
		"rows not a multiple of views": func(c *xla.StepConfig) { c.Rows = 5 },
		"channels":                     func(c *xla.StepConfig) { c.Channels = 1 },
		"one mean for three channels":  func(c *xla.StepConfig) { c.Mean, c.Std = []float64{0.5}, []float64{0.5} },
		"contrast mode one":            func(c *xla.StepConfig) { c.Loss.ContrastMode = loss.ContrastOne },
		"samples over replicas":        func(c *xla.StepConfig) { c.Replicas = 3 },
		"sync BN on one device":        func(c *xla.StepConfig) { c.SyncBN = true },
		"cross-entropy over replicas":  func(c *xla.StepConfig) { c.CrossEntropy, c.Replicas = true, 2 },
	} {
		c := ok
		change(&c)
		if _, err := xla.Step(m, c); !errors.Is(err, xla.ErrLower) {
			t.Errorf("%s: error %v, want ErrLower", name, err)
		}
	}
	bad := ok
	bad.Optim = optim.Config{Momentum: 2}
	if _, err := xla.Step(m, bad); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("momentum 2: error %v, want optim.ErrInvalid", err)
	}
	if _, err := xla.Encode(m, xla.EncodeConfig{Batch: xla.Batch{Rows: 0, Channels: 3, Height: 8, Width: 8}}); !errors.Is(err, xla.ErrLower) {
		t.Errorf("encode of 0 rows: error %v, want ErrLower", err)
	}
}
