package probe

import (
	"fmt"
	"math"
)

// Schedule names how the learning rate of the linear probe changes.
type Schedule string

const (
	// Cosine anneals the rate every step from LR to MinLR over all epochs.
	Cosine Schedule = "cosine"
	// Step multiplies the rate by Gamma after each epoch in Milestones.
	Step Schedule = "step"
)

// Config sets up linear-probe training. The zero value is usable: unset
// fields take the defaults documented here, which follow SupContrast's
// main_linear.py where it has one.
type Config struct {
	// Epochs is the number of passes over the training set (default 20).
	Epochs int `yaml:"epochs"`
	// BatchSize is the number of rows per SGD step (default 256); the last
	// step of an epoch takes the remainder.
	BatchSize int `yaml:"batch_size"`
	// LR is the initial learning rate (default 0.1).
	LR float64 `yaml:"lr"`
	// Momentum is the SGD momentum in [0, 1) (default 0.9; zero selects it).
	Momentum float64 `yaml:"momentum"`
	// WeightDecay is the L2 penalty added to the gradient of weights and
	// biases, as torch.optim.SGD does (default 0).
	WeightDecay float64 `yaml:"weight_decay"`
	// Schedule is Cosine (default) or Step.
	Schedule Schedule `yaml:"schedule"`
	// MinLR is where the cosine schedule ends, in [0, LR] (default 0).
	MinLR float64 `yaml:"min_lr"`
	// Milestones are the epoch counts after which the step schedule decays
	// the rate, strictly increasing in [1, Epochs) (default 60%, 75% and 90%
	// of Epochs, as SupContrast's 60,75,90 of 100).
	Milestones []int `yaml:"milestones"`
	// Gamma is the step schedule's decay factor in (0, 1] (default 0.1).
	Gamma float64 `yaml:"gamma"`
	// Standardize scales each feature to zero mean and unit variance, with
	// statistics fit on the training set only; the trained Linear folds the
	// scaling in, so it applies to raw features.
	Standardize bool `yaml:"standardize"`
	// Seed drives the per-epoch shuffling; equal seeds give equal models.
	Seed uint64 `yaml:"seed"`
	// Progress, if set, is called after every epoch from Train's goroutine.
	Progress func(EpochStats) `yaml:"-"`
}

// EpochStats describes one finished epoch of linear-probe training.
type EpochStats struct {
	Epoch, Epochs int
	// Loss is the mean training cross-entropy over the epoch and Accuracy
	// the training top-1, both measured before each step's update.
	Loss, Accuracy float64
	// LR is the rate of the epoch's last step.
	LR float64
}

func (c *Config) setDefaults() {
	if c.Epochs == 0 {
		c.Epochs = 20
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.LR == 0 {
		c.LR = 0.1
	}
	if c.Momentum == 0 {
		c.Momentum = 0.9
	}
	if c.Schedule == "" {
		c.Schedule = Cosine
	}
	if c.Gamma == 0 {
		c.Gamma = 0.1
	}
	if c.Schedule == Step && c.Milestones == nil {
		for _, f := range []float64{0.6, 0.75, 0.9} {
			m := int(f * float64(c.Epochs))
			if m >= 1 && (len(c.Milestones) == 0 || m > c.Milestones[len(c.Milestones)-1]) {
				c.Milestones = append(c.Milestones, m)
			}
		}
	}
}

// Validate reports the first invalid field, with defaults applied first.
func (c Config) Validate() error {
	c.setDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case c.Epochs < 0:
		return bad("epochs %d, want > 0", c.Epochs)
	case c.BatchSize < 0:
		return bad("batch_size %d, want > 0", c.BatchSize)
	case !finite(c.LR) || c.LR < 0:
		return bad("lr %v, want > 0", c.LR)
	case !(c.Momentum >= 0 && c.Momentum < 1):
		return bad("momentum %v, want [0, 1)", c.Momentum)
	case !finite(c.WeightDecay) || c.WeightDecay < 0:
		return bad("weight_decay %v, want >= 0", c.WeightDecay)
	case c.Schedule != Cosine && c.Schedule != Step:
		return bad("schedule %q, want %q or %q", c.Schedule, Cosine, Step)
	case !(c.MinLR >= 0 && c.MinLR <= c.LR):
		return bad("min_lr %v, want [0, lr=%v]", c.MinLR, c.LR)
	case !(c.Gamma > 0 && c.Gamma <= 1):
		return bad("gamma %v, want (0, 1]", c.Gamma)
	}
	for i, m := range c.Milestones {
		if m < 1 || m >= c.Epochs || (i > 0 && m <= c.Milestones[i-1]) {
			return bad("milestones %v must increase strictly within [1, epochs=%d)", c.Milestones, c.Epochs)
		}
	}
	return nil
}

// lr is the rate for step s of steps in epoch (both 0-based).
func (c *Config) lr(epoch, s, steps int) float64 {
	if c.Schedule == Step {
		lr := c.LR
		for _, m := range c.Milestones {
			if epoch >= m {
				lr *= c.Gamma
			}
		}
		return lr
	}
	t := (float64(epoch) + float64(s)/float64(steps)) / float64(c.Epochs)
	return c.MinLR + (c.LR-c.MinLR)*(1+math.Cos(math.Pi*t))/2
}
