package optim

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/config/field/fieldtest"
)

// checkOneKey fails unless err is one *field.Error naming key and wrapping
// ErrInvalid, its message starting with the key.
func checkOneKey(t *testing.T, err error, key string) {
	t.Helper()
	if err := fieldtest.Check(err, key, ErrInvalid); err != nil {
		t.Error(err)
	}
}

// TestConfigValidate: each bad value is one error naming its key, from
// Validate and from New.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config // New's defaults applied before Validate
		key  string // "" when valid
	}{
		{"zero value", Config{}, ""},
		{"SupContrast", Config{Momentum: 0.9, WeightDecay: 1e-4}, ""},
		{"lars", Config{Momentum: 0.9, Optimizer: OptimizerLARS}, ""},
		{"nesterov", Config{Momentum: 0.9, Nesterov: true}, ""},
		{"negative momentum", Config{Momentum: -0.1}, "momentum"},
		{"NaN momentum", Config{Momentum: math.NaN()}, "momentum"},
		{"momentum 1", Config{Momentum: 1}, "momentum"},
		{"negative weight decay", Config{WeightDecay: -1}, "weight_decay"},
		{"weight decay above 1", Config{WeightDecay: 2}, "weight_decay"},
		{"infinite weight decay", Config{WeightDecay: math.Inf(1)}, "weight_decay"},
		{"unknown optimizer", Config{Optimizer: "adam"}, "optimizer"},
		{"nesterov without momentum", Config{Nesterov: true}, "nesterov"},
		{"lars trust coefficient", Config{Optimizer: OptimizerLARS, TrustCoefficient: 0.02}, ""},
		{"negative trust coefficient", Config{Optimizer: OptimizerLARS, TrustCoefficient: -1}, "trust_coefficient"},
		{"NaN trust coefficient", Config{Optimizer: OptimizerLARS, TrustCoefficient: math.NaN()}, "trust_coefficient"},
		{"trust coefficient above 1", Config{TrustCoefficient: 1.5}, "trust_coefficient"},
		{"infinite trust coefficient", Config{TrustCoefficient: math.Inf(1)}, "trust_coefficient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.SetDefaults()
			err := c.Validate()
			_, newErr := New(tt.cfg)
			if tt.key == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate: %v, New: %v", err, newErr)
				}
				return
			}
			checkOneKey(t, err, tt.key)
			checkOneKey(t, newErr, tt.key)
		})
	}
}

// TestScheduleValidate: each bad value is one error naming its key; with
// warm-up, warm_epochs lies in [1, Epochs].
func TestScheduleValidate(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule // defaults applied before Validate
		key  string   // "" when valid
	}{
		{"zero value", Schedule{}, ""},
		{"cosine with warm-up", Schedule{BaseLR: 0.5, Decay: DecayCosine, Warm: true, WarmEpochs: 10, Epochs: 10}, ""},
		{"forced warm-up", Schedule{BatchSize: 512, Epochs: 10, WarmEpochs: 3}, ""},
		{"negative lr", Schedule{BaseLR: -1}, "lr"},
		{"lr above 100", Schedule{BaseLR: 101}, "lr"},
		{"unknown decay", Schedule{Decay: "linear"}, "schedule"},
		{"warm-up longer than the run", Schedule{Warm: true, WarmEpochs: 11, Epochs: 10}, "warm_epochs"},
		{"forced warm-up longer than the run", Schedule{BatchSize: 512, WarmEpochs: 11, Epochs: 10}, "warm_epochs"},
		{"negative warm epochs", Schedule{WarmEpochs: -1}, "warm_epochs"},
		{"negative epochs", Schedule{Epochs: -3}, "epochs"},
		{"negative batch size", Schedule{BatchSize: -1}, "batch_size"},
		{"set milestones", Schedule{Epochs: 100, DecayEpochs: []int{60, 80}}, ""},
		{"milestone at epochs-1", Schedule{Epochs: 100, DecayEpochs: []int{99}}, ""},
		{"derived milestones of a 1-epoch run", Schedule{Epochs: 1}, ""},
		{"milestone at the last epoch", Schedule{Epochs: 100, DecayEpochs: []int{70, 100}}, "decay_epochs"},
		{"default-run milestone past 999", Schedule{DecayEpochs: []int{1000}}, "decay_epochs"},
		{"milestone 0", Schedule{Epochs: 100, DecayEpochs: []int{0, 50}}, "decay_epochs"},
		{"negative milestone", Schedule{Epochs: 100, DecayEpochs: []int{-1}}, "decay_epochs"},
		{"decreasing milestones", Schedule{Epochs: 100, DecayEpochs: []int{80, 60}}, "decay_epochs"},
		{"repeated milestone", Schedule{Epochs: 100, DecayEpochs: []int{60, 60}}, "decay_epochs"},
		{"decay rate 1", Schedule{DecayRate: 1}, ""},
		{"NaN decay rate", Schedule{DecayRate: math.NaN()}, "decay_rate"},
		{"negative decay rate", Schedule{DecayRate: -0.1}, "decay_rate"},
		{"decay rate above 1", Schedule{DecayRate: 2}, "decay_rate"},
		{"warm-up start", Schedule{Warm: true, WarmupFrom: 0.001}, ""},
		{"negative warm-up start", Schedule{WarmupFrom: -0.1}, "warmup_from"},
		{"NaN warm-up start", Schedule{WarmupFrom: math.NaN()}, "warmup_from"},
		{"warm-up start above 100", Schedule{WarmupFrom: 101}, "warmup_from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			s.setDefaults()
			err := s.Validate()
			_, lrErr := tt.s.EpochLR(1)
			if tt.key == "" {
				if err != nil || lrErr != nil {
					t.Fatalf("Validate: %v, EpochLR: %v", err, lrErr)
				}
				return
			}
			checkOneKey(t, err, tt.key)
			checkOneKey(t, lrErr, tt.key)
		})
	}
}

// TestValidateIsStrict: Validate checks as given, so the settings a user
// writes (pipeline.yaml's lr: 0, optimizer: "", decay_rate: 0) are refused
// rather than defaulted, while the zero values documented as defaults
// (warm_epochs without warm-up, empty decay_epochs) and the fields that are
// not keys of their own (Epochs, BatchSize) stand for their defaults.
func TestValidateIsStrict(t *testing.T) {
	var keys []string
	for _, e := range field.List(errors.Join(Config{}.Validate(), Schedule{}.Validate())) {
		keys = append(keys, e.Key)
	}
	want := []string{"optimizer", "trust_coefficient", "lr", "schedule", "decay_rate", "warmup_from"}
	if !slices.Equal(keys, want) {
		t.Errorf("zero Config and Schedule: keys %v, want %v", keys, want)
	}
	if err := (Schedule{BaseLR: 0.1, Decay: DecayStep, DecayRate: 0.1, WarmupFrom: 0.01}).Validate(); err != nil {
		t.Errorf("no warm-up, warm_epochs 0, empty decay_epochs: %v", err)
	}
}
