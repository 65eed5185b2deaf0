package probe

import (
	"fmt"
	"math"

	"github.com/supflow/supflow/config/field"
)

// Schedule names how the learning rate of the linear probe changes.
type Schedule string

const (
	// Cosine anneals the rate every step from LR to MinLR over all epochs.
	Cosine Schedule = "cosine"
	// Step multiplies the rate by Gamma after each epoch in Milestones.
	Step Schedule = "step"
)

// Bounds of Config fields.
const (
	maxEpochs   = 10000
	maxBatch    = 65536
	minLR       = 1e-8
	maxLR       = 100
	maxMomentum = 0.9999
	maxDecay    = 1
)

// Config sets up linear-probe training. Its YAML tags are the keys of
// pipeline.yaml's evaluate section that it declares (epochs, batch_size,
// lr, momentum, weight_decay, schedule); the fields tagged "-" are not
// keys. The zero value is usable: Train fills unset fields from
// DefaultConfig, whose values follow SupContrast's main_linear.py where it
// has one.
type Config struct {
	// Epochs is the number of passes over the training set, in [1, 10000];
	// default 20.
	Epochs int `yaml:"epochs"`
	// BatchSize is the number of rows per SGD step, in [1, 65536]; default
	// 256. The last step of an epoch takes the remainder.
	BatchSize int `yaml:"batch_size"`
	// LR is the initial learning rate, in [1e-8, 100]; default 0.1.
	LR float64 `yaml:"lr"`
	// Momentum is the SGD momentum, in (0, 0.9999]; default 0.9. Zero
	// selects the default, so Validate refuses it.
	Momentum float64 `yaml:"momentum"`
	// WeightDecay, in [0, 1], is the L2 penalty added to the gradient of
	// weights and biases, as torch.optim.SGD does; default 0.
	WeightDecay float64 `yaml:"weight_decay"`
	// Schedule is Cosine (default) or Step.
	Schedule Schedule `yaml:"schedule"`
	// MinLR is where the cosine schedule ends, in [0, LR] (default 0).
	MinLR float64 `yaml:"-"`
	// Milestones are the epoch counts after which the step schedule decays
	// the rate, strictly increasing in [1, Epochs) (default 60%, 75% and 90%
	// of Epochs, as SupContrast's 60,75,90 of 100).
	Milestones []int `yaml:"-"`
	// Gamma is the step schedule's decay factor in (0, 1] (default 0.1).
	Gamma float64 `yaml:"-"`
	// Standardize scales each feature to zero mean and unit variance, with
	// statistics fit on the training set only; the trained Linear folds the
	// scaling in, so it applies to raw features.
	Standardize bool `yaml:"-"`
	// Seed drives the per-epoch shuffling; equal seeds give equal models.
	Seed uint64 `yaml:"-"`
	// Progress, if set, is called after every epoch from Train's goroutine.
	Progress func(EpochStats) `yaml:"-"`
}

// DefaultConfig returns the defaults of every field (Milestones are
// derived from Epochs when the step schedule needs them).
func DefaultConfig() Config {
	return Config{Epochs: 20, BatchSize: 256, LR: 0.1, Momentum: 0.9, Schedule: Cosine, Gamma: 0.1}
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

// setDefaults fills the unset fields from DefaultConfig and derives the
// step schedule's milestones.
func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.Epochs == 0 {
		c.Epochs = d.Epochs
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.LR == 0 {
		c.LR = d.LR
	}
	if c.Momentum == 0 {
		c.Momentum = d.Momentum
	}
	if c.Schedule == "" {
		c.Schedule = d.Schedule
	}
	if c.Gamma == 0 {
		c.Gamma = d.Gamma
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

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its key and wrapping ErrInvalidConfig. It checks
// c as given: a zero epoch count, batch size, rate or momentum, or an
// empty schedule, is refused (Train fills them first); a zero MinLR or
// Gamma, not keys, stands for its default.
func (c Config) Validate() error {
	k := field.NewChecker(ErrInvalidConfig)
	k.IntIn("epochs", c.Epochs, 1, maxEpochs)
	k.IntIn("batch_size", c.BatchSize, 1, maxBatch)
	k.FloatIn("lr", c.LR, minLR, maxLR)
	if !(c.Momentum > 0 && c.Momentum <= maxMomentum) {
		k.Add("momentum", c.Momentum, fmt.Sprintf("a number in (0, %g]", maxMomentum))
	}
	k.FloatIn("weight_decay", c.WeightDecay, 0, maxDecay)
	k.OneOf("schedule", string(c.Schedule), string(Cosine), string(Step))
	if !(c.MinLR >= 0) || c.MinLR > c.LR {
		k.Add("min_lr", c.MinLR, fmt.Sprintf("a number in [0, lr=%v]", c.LR))
	}
	if !(c.Gamma >= 0 && c.Gamma <= 1) {
		k.Add("gamma", c.Gamma, "a number in (0, 1] (0 = 0.1)")
	}
	for i, m := range c.Milestones {
		if m < 1 || m >= c.Epochs || (i > 0 && m <= c.Milestones[i-1]) {
			k.Add("milestones", c.Milestones, fmt.Sprintf("strictly increasing epochs in [1, epochs=%d)", c.Epochs))
			break
		}
	}
	return k.Err()
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
