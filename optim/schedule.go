package optim

import (
	"fmt"
	"math"
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

// defaultDecayEpochs are SupContrast's lr_decay_epochs for step decay.
func defaultDecayEpochs() []int { return []int{700, 800, 900} }

// Schedule is SupContrast's learning-rate schedule (main_supcon.py:
// adjust_learning_rate once per epoch, warmup_learning_rate once per batch).
// Epochs are 1-based and batches 0-based, as there. Zero fields take
// SupContrast's defaults, so the zero value is its default schedule (step
// decay, no warm-up).
type Schedule struct {
	// BaseLR is the base learning rate (learning_rate); 0 means 0.05.
	BaseLR float64 `json:"learning_rate,omitempty" yaml:"learning_rate,omitempty"`
	// Epochs is the number of epochs (epochs); 0 means 1000.
	Epochs int `json:"epochs,omitempty" yaml:"epochs,omitempty"`
	// Cosine selects cosine annealing from BaseLR down to
	// eta_min = BaseLR*DecayRate^3; otherwise step decay.
	Cosine bool `json:"cosine,omitempty" yaml:"cosine,omitempty"`
	// DecayRate is lr_decay_rate; 0 means 0.1.
	DecayRate float64 `json:"lr_decay_rate,omitempty" yaml:"lr_decay_rate,omitempty"`
	// DecayEpochs are the step-decay milestones (lr_decay_epochs): from
	// epoch m+1 on, the rate is multiplied by DecayRate once more for each
	// milestone m. Empty means 700, 800, 900.
	DecayEpochs []int `json:"lr_decay_epochs,omitempty" yaml:"lr_decay_epochs,omitempty"`
	// Warm enables the linear warm-up (warm). It is forced on when
	// BatchSize > 256, as SupContrast does.
	Warm bool `json:"warm,omitempty" yaml:"warm,omitempty"`
	// BatchSize is the training batch size (batch_size), used only to
	// force the warm-up.
	BatchSize int `json:"batch_size,omitempty" yaml:"batch_size,omitempty"`
	// WarmEpochs is the warm-up length in epochs; 0 means 10.
	WarmEpochs int `json:"warm_epochs,omitempty" yaml:"warm_epochs,omitempty"`
	// WarmupFrom is the learning rate at the first warm-up batch; 0 means
	// 0.01.
	WarmupFrom float64 `json:"warmup_from,omitempty" yaml:"warmup_from,omitempty"`
}

func (s *Schedule) setDefaults() {
	if s.BaseLR == 0 {
		s.BaseLR = DefaultLR
	}
	if s.Epochs == 0 {
		s.Epochs = DefaultEpochs
	}
	if s.DecayRate == 0 {
		s.DecayRate = DefaultDecayRate
	}
	if len(s.DecayEpochs) == 0 {
		s.DecayEpochs = defaultDecayEpochs()
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

// Validate reports whether s (after defaults) is usable.
func (s Schedule) Validate() error {
	s.setDefaults()
	switch {
	case !finiteNonNeg(s.BaseLR):
		return fmt.Errorf("%w: learning rate %v", ErrInvalid, s.BaseLR)
	case s.Epochs < 1:
		return fmt.Errorf("%w: %d epochs", ErrInvalid, s.Epochs)
	case !finiteNonNeg(s.DecayRate):
		return fmt.Errorf("%w: decay rate %v", ErrInvalid, s.DecayRate)
	case s.WarmEpochs < 1:
		return fmt.Errorf("%w: %d warm-up epochs", ErrInvalid, s.WarmEpochs)
	case !finiteNonNeg(s.WarmupFrom):
		return fmt.Errorf("%w: warm-up start %v", ErrInvalid, s.WarmupFrom)
	case s.BatchSize < 0:
		return fmt.Errorf("%w: batch size %d", ErrInvalid, s.BatchSize)
	}
	return nil
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
	if s.Cosine {
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
	if s.Cosine {
		to = s.epochLR(s.WarmEpochs)
	}
	p := float64(batch+(epoch-1)*batches) / float64(s.WarmEpochs*batches)
	return s.WarmupFrom + p*(to-s.WarmupFrom), nil
}
