package optim

import (
	"cmp"
	"fmt"
	"math"

	"github.com/supflow/supflow/config/field"
)

// Defaults of SupContrast's main_supcon.py.
const (
	DefaultLR          = 0.05
	DefaultEpochs      = 1000
	DefaultDecayRate   = 0.1
	DefaultWarmEpochs  = 10
	DefaultWarmupFrom  = 0.01
	warmBatchThreshold = 256
)

// decayFractions are the step-decay milestones, in tenths of the run, that
// an empty DecayEpochs stands for: 70%, 80% and 90% of the epochs, which
// are SupContrast's lr_decay_epochs 700,800,900 for its 1000 epochs.
var decayFractions = [...]int{7, 8, 9}

// DefaultDecayEpochs are the step-decay milestones an empty
// Schedule.DecayEpochs stands for in a run of epochs epochs (0 = 1000):
// 70%, 80% and 90% of it, rounded down, leaving out 0 and repeats (so a
// run of 1000 epochs gets SupContrast's 700, 800, 900 and one of 100 gets
// 70, 80, 90).
func DefaultDecayEpochs(epochs int) []int {
	epochs = cmp.Or(epochs, DefaultEpochs)
	var ms []int
	for _, f := range decayFractions {
		if m := epochs * f / 10; m >= 1 && (len(ms) == 0 || m > ms[len(ms)-1]) {
			ms = append(ms, m)
		}
	}
	return ms
}

// Bounds of Schedule fields.
const (
	minLR = 1e-8
	maxLR = 100
)

// Decay names how a Schedule lowers the rate over the epochs.
type Decay string

// Decays.
const (
	// DecayStep multiplies the rate by DecayRate at each of DecayEpochs
	// (SupContrast's default).
	DecayStep Decay = "step"
	// DecayCosine anneals the rate from BaseLR down to
	// eta_min = BaseLR*DecayRate^3 (SupContrast's --cosine).
	DecayCosine Decay = "cosine"
)

// Schedule is SupContrast's learning-rate schedule (main_supcon.py:
// adjust_learning_rate once per epoch, warmup_learning_rate once per batch).
// Epochs are 1-based and batches 0-based, as there. Its YAML tags are the
// keys of pipeline.yaml's train section that it declares (lr, schedule,
// warm, warm_epochs, decay_epochs, decay_rate, warmup_from); Epochs and
// BatchSize are the run's (train.epochs and train.batch_size, which the
// train stage declares). Zero fields take SupContrast's defaults (the
// milestones scaled to Epochs), so the zero value is its default schedule
// (step decay, no warm-up).
type Schedule struct {
	// BaseLR is the base learning rate (learning_rate), in [1e-8, 100];
	// 0 means 0.05.
	BaseLR float64 `yaml:"lr"`
	// Decay is DecayCosine or DecayStep; empty means DecayStep.
	Decay Decay `yaml:"schedule"`
	// Warm enables the linear warm-up (warm). It is forced on when
	// BatchSize > 256, as SupContrast does.
	Warm bool `yaml:"warm"`
	// WarmEpochs is the warm-up length in epochs, in [1, Epochs] when
	// warming up; 0 means 10.
	WarmEpochs int `yaml:"warm_epochs"`
	// Epochs is the number of epochs (epochs); 0 means 1000.
	Epochs int `yaml:"-"`
	// BatchSize is the training batch size (batch_size), used only to
	// force the warm-up.
	BatchSize int `yaml:"-"`
	// DecayEpochs are the step-decay milestones (lr_decay_epochs),
	// increasing, in [1, Epochs-1]: from epoch m+1 on, the rate is
	// multiplied by DecayRate once more for each milestone m. Empty means
	// DefaultDecayEpochs(Epochs): 70%, 80%, 90% of the run (SupContrast's
	// 700, 800, 900 for 1000 epochs). Cosine decay does not use them.
	DecayEpochs []int `yaml:"decay_epochs"`
	// DecayRate is lr_decay_rate, in (0, 1]: the factor of each step
	// milestone, and eta_min = BaseLR*DecayRate^3 for cosine decay; 0
	// means 0.1.
	DecayRate float64 `yaml:"decay_rate"`
	// WarmupFrom is the learning rate at the first warm-up batch
	// (warmup_from), in [1e-8, 100]; 0 means 0.01.
	WarmupFrom float64 `yaml:"warmup_from"`
}

func (s *Schedule) setDefaults() {
	if s.BaseLR == 0 {
		s.BaseLR = DefaultLR
	}
	if s.Decay == "" {
		s.Decay = DecayStep
	}
	if s.Epochs == 0 {
		s.Epochs = DefaultEpochs
	}
	if s.DecayRate == 0 {
		s.DecayRate = DefaultDecayRate
	}
	if len(s.DecayEpochs) == 0 {
		s.DecayEpochs = DefaultDecayEpochs(s.Epochs)
	}
	if s.BatchSize > warmBatchThreshold {
		s.Warm = true
	}
	if s.WarmEpochs == 0 {
		s.WarmEpochs = DefaultWarmEpochs
	}
	if s.WarmupFrom == 0 {
		s.WarmupFrom = DefaultWarmupFrom
	}
}

// Validate reports every field of s out of range, each a *field.Error
// (config/field) named by its key and wrapping ErrInvalid. It checks s as
// given: a zero BaseLR, DecayRate or WarmupFrom or an empty Decay is
// refused (LR and EpochLR fill them first); a zero WarmEpochs without
// warm-up and an empty DecayEpochs stand for their defaults, as do a zero
// Epochs and BatchSize, which are not keys of their own. With warm-up
// (Warm, or BatchSize above 256) WarmEpochs must lie in [1, Epochs].
// DecayEpochs must increase and lie in [1, Epochs-1] (a milestone at or
// after the last epoch would never decay), whatever the Decay.
func (s Schedule) Validate() error {
	k := field.NewChecker(ErrInvalid)
	k.FloatIn("lr", s.BaseLR, minLR, maxLR)
	k.OneOf("schedule", string(s.Decay), string(DecayCosine), string(DecayStep))
	if s.Warm || s.BatchSize > warmBatchThreshold {
		k.IntIn("warm_epochs", s.WarmEpochs, 1, cmp.Or(s.Epochs, DefaultEpochs))
	} else if s.WarmEpochs < 0 {
		k.Add("warm_epochs", s.WarmEpochs, "an integer >= 0 (0 = 10, used with warm)")
	}
	if s.Epochs < 0 {
		k.Add("epochs", s.Epochs, "an integer >= 1 (0 = 1000)")
	}
	if s.BatchSize < 0 {
		k.Add("batch_size", s.BatchSize, "an integer >= 0")
	}
	if last := cmp.Or(s.Epochs, DefaultEpochs) - 1; !increasingIn(s.DecayEpochs, 1, last) {
		k.Add("decay_epochs", s.DecayEpochs, fmt.Sprintf(
			"empty (70%%, 80%%, 90%% of epochs) or increasing integers in [1, %d] (epochs-1)", last))
	}
	if !(s.DecayRate > 0 && s.DecayRate <= 1) {
		k.Add("decay_rate", s.DecayRate, "a number in (0, 1]")
	}
	k.FloatIn("warmup_from", s.WarmupFrom, minLR, maxLR)
	return k.Err()
}

// increasingIn reports whether xs increase strictly within [lo, hi].
func increasingIn(xs []int, lo, hi int) bool {
	for i, x := range xs {
		if x < lo || x > hi || (i > 0 && x <= xs[i-1]) {
			return false
		}
	}
	return true
}

// EpochLR is the learning rate SupContrast's adjust_learning_rate sets for
// epoch (1-based), before any warm-up.
func (s Schedule) EpochLR(epoch int) (float64, error) {
	s.setDefaults()
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if epoch < 1 || epoch > s.Epochs {
		return 0, fmt.Errorf("%w: epoch %d outside 1..%d", ErrInvalid, epoch, s.Epochs)
	}
	return s.epochLR(epoch), nil
}

func (s Schedule) epochLR(epoch int) float64 {
	lr := s.BaseLR
	if s.Decay == DecayCosine {
		etaMin := lr * math.Pow(s.DecayRate, 3)
		return etaMin + (lr-etaMin)*(1+math.Cos(math.Pi*float64(epoch)/float64(s.Epochs)))/2
	}
	steps := 0
	for _, m := range s.DecayEpochs {
		if epoch > m {
			steps++
		}
	}
	if steps > 0 {
		lr *= math.Pow(s.DecayRate, float64(steps))
	}
	return lr
}

// LR is the learning rate for batch (0-based) of epoch (1-based) when an
// epoch has batches batches: the warm-up value while warming up, EpochLR
// otherwise.
//
// The warm-up runs over the first WarmEpochs epochs, linearly in
// p = (batch + (epoch-1)*batches) / (WarmEpochs*batches) from WarmupFrom to
// warmup_to, which is the cosine rate at epoch WarmEpochs (or BaseLR with step
// decay).
func (s Schedule) LR(epoch, batch, batches int) (float64, error) {
	s.setDefaults()
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if epoch < 1 || epoch > s.Epochs {
		return 0, fmt.Errorf("%w: epoch %d outside 1..%d", ErrInvalid, epoch, s.Epochs)
	}
	if batches < 1 || batch < 0 || batch >= batches {
		return 0, fmt.Errorf("%w: batch %d of %d", ErrInvalid, batch, batches)
	}
	if !s.Warm || epoch > s.WarmEpochs {
		return s.epochLR(epoch), nil
	}
	to := s.BaseLR
	if s.Decay == DecayCosine {
		to = s.epochLR(s.WarmEpochs)
	}
	p := float64(batch+(epoch-1)*batches) / float64(s.WarmEpochs*batches)
	return s.WarmupFrom + p*(to-s.WarmupFrom), nil
}
