package optim

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// Expected values come from SupContrast's formulas evaluated by hand
// (Python, float64):
//
//	eta_min = 0.5 * 0.1**3 = 0.0005
//	cosine(e) = eta_min + (0.5 - eta_min) * (1 + cos(pi*e/100)) / 2
//	warmup_to = cosine(10) = 0.4877763649447146
//	warm(e, b) = 0.01 + (b + (e-1)*4) / (10*4) * (warmup_to - 0.01)
func TestScheduleCosineWarm(t *testing.T) {
	s := Schedule{BaseLR: 0.5, Epochs: 100, Decay: DecayCosine, BatchSize: 512} // > 256 forces warm-up
	tests := []struct {
		epoch, batch int
		want         float64
	}{
		{1, 0, 0.01},                 // p = 0
		{1, 3, 0.045833227370853595}, // p = 3/40
		{5, 2, 0.22499936422512157},  // p = 18/40
		{10, 3, 0.4758319558210967},  // p = 39/40, last warm-up batch
		{11, 0, 0.4852349720463178},  // cosine(11)
		{11, 3, 0.4852349720463178},  // constant within an epoch
		{50, 1, 0.25025},             // cos(pi/2) = 0: (eta_min + 0.5)/2
		{100, 0, 0.0005000000000000001},
	}
	for _, tt := range tests {
		got, err := s.LR(tt.epoch, tt.batch, 4)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-tt.want) > 1e-15 {
			t.Errorf("LR(epoch %d, batch %d) = %.17g, want %.17g", tt.epoch, tt.batch, got, tt.want)
		}
	}
	// Without the warm-up epoch 1 is already annealed slightly.
	e1, err := Schedule{BaseLR: 0.5, Epochs: 100, Decay: DecayCosine}.LR(1, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.49987676345134147; math.Abs(e1-want) > 1e-15 {
		t.Errorf("cosine epoch 1 = %.17g, want %.17g", e1, want)
	}
}

// Step decay with SupContrast's defaults (0.05, milestones 700/800/900,
// rate 0.1, strict "epoch > milestone"); warm-up to the base rate.
func TestScheduleStepDecay(t *testing.T) {
	tests := []struct {
		name         string
		s            Schedule
		epoch, batch int
		want         float64
	}{
		{"start", Schedule{}, 1, 0, 0.05},
		{"at milestone", Schedule{}, 700, 0, 0.05},
		{"after first", Schedule{}, 701, 0, 0.005},
		{"after second", Schedule{}, 801, 0, 0.0005},
		{"after third", Schedule{}, 1000, 5, 0.00005},
		{"custom", Schedule{BaseLR: 1, Epochs: 30, DecayEpochs: []int{10, 20}, DecayRate: 0.5}, 21, 0, 0.25},
		// warm: 0.01 + (5 + 2*10)/(10*10) * (0.05 - 0.01) = 0.02
		{"warm", Schedule{Warm: true}, 3, 5, 0.02},
		{"after warm", Schedule{Warm: true}, 11, 0, 0.05},
		{"batch 256 does not force warm", Schedule{BatchSize: 256}, 1, 0, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.LR(tt.epoch, tt.batch, 10)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tt.want) > 1e-15 {
				t.Errorf("LR = %.17g, want %.17g", got, tt.want)
			}
			if tt.epoch > 10 || !tt.s.Warm {
				e, err := tt.s.EpochLR(tt.epoch)
				if err != nil {
					t.Fatal(err)
				}
				if e != got {
					t.Errorf("EpochLR = %v, LR = %v", e, got)
				}
			}
		})
	}
}

func TestScheduleInvalid(t *testing.T) {
	tests := []struct {
		name                  string
		s                     Schedule
		epoch, batch, batches int
	}{
		{"epoch 0", Schedule{}, 0, 0, 10},
		{"past last epoch", Schedule{Epochs: 5}, 6, 0, 10},
		{"negative batch", Schedule{}, 1, -1, 10},
		{"batch past end", Schedule{}, 1, 10, 10},
		{"no batches", Schedule{}, 1, 0, 0},
		{"negative lr", Schedule{BaseLR: -1}, 1, 0, 10},
		{"negative epochs", Schedule{Epochs: -3}, 1, 0, 10},
		{"NaN rate", Schedule{DecayRate: math.NaN()}, 1, 0, 10},
		{"negative warm epochs", Schedule{WarmEpochs: -1}, 1, 0, 10},
		{"negative batch size", Schedule{BatchSize: -1}, 1, 0, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.LR(tt.epoch, tt.batch, tt.batches); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestDefaultDecayEpochs: an empty DecayEpochs is 70%, 80%, 90% of the run,
// which is SupContrast's 700, 800, 900 for its 1000 epochs.
func TestDefaultDecayEpochs(t *testing.T) {
	tests := []struct {
		epochs int
		want   []int
	}{
		{0, []int{700, 800, 900}},
		{1000, []int{700, 800, 900}},
		{100, []int{70, 80, 90}},
		{15, []int{10, 12, 13}},
		{5, []int{3, 4}},
		{2, []int{1}},
		{1, nil},
	}
	for _, tt := range tests {
		if got := DefaultDecayEpochs(tt.epochs); !slices.Equal(got, tt.want) {
			t.Errorf("DefaultDecayEpochs(%d) = %v, want %v", tt.epochs, got, tt.want)
		}
	}
}

// TestStepDecay100Epochs: in a 100-epoch run step decay lowers the rate
// after 70, 80 and 90 epochs when decay_epochs is empty, and after the
// milestones given when set, by decay_rate each time.
func TestStepDecay100Epochs(t *testing.T) {
	tests := []struct {
		name   string
		s      Schedule
		decays []int // the epochs whose rate is lower than the previous one's
		last   float64
	}{
		{"derived", Schedule{BaseLR: 1, Epochs: 100}, []int{71, 81, 91}, 0.001},
		{"set", Schedule{BaseLR: 1, Epochs: 100, DecayEpochs: []int{60, 80}, DecayRate: 0.5}, []int{61, 81}, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var decays []int
			prev, err := tt.s.EpochLR(1)
			if err != nil {
				t.Fatal(err)
			}
			if prev != 1 {
				t.Errorf("epoch 1: %v, want 1", prev)
			}
			for e := 2; e <= 100; e++ {
				lr, err := tt.s.LR(e, 0, 10)
				if err != nil {
					t.Fatal(err)
				}
				if lr < prev {
					decays = append(decays, e)
				}
				prev = lr
			}
			if !slices.Equal(decays, tt.decays) {
				t.Errorf("decays at epochs %v, want %v", decays, tt.decays)
			}
			if math.Abs(prev-tt.last) > 1e-15 {
				t.Errorf("epoch 100: %.17g, want %.17g", prev, tt.last)
			}
		})
	}
}

// TestWarmupFrom: the warm-up starts at WarmupFrom.
func TestWarmupFrom(t *testing.T) {
	s := Schedule{BaseLR: 0.5, Epochs: 100, Warm: true, WarmEpochs: 10, WarmupFrom: 0.1}
	got, err := s.LR(1, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got != 0.1 {
		t.Errorf("first warm-up batch: %v, want 0.1", got)
	}
	// Halfway: 0.1 + 50/100 * (0.5 - 0.1).
	if got, err := s.LR(6, 0, 10); err != nil || math.Abs(got-0.3) > 1e-15 {
		t.Errorf("halfway: %v, %v, want 0.3", got, err)
	}
}
