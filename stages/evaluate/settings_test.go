package evaluate

import (
	"errors"
	"strings"
	"testing"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/probe"
)

// TestSettingsValidate: each bad value of the evaluate section is one
// error naming its key, wrapping ErrInput and probe's sentinel.
func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Settings)
		key  string // "" when valid
	}{
		{"defaults", func(*Settings) {}, ""},
		{"step schedule", func(s *Settings) { s.Probe.Schedule = probe.Step }, ""},
		{"epochs 0", func(s *Settings) { s.Probe.Epochs = 0 }, "epochs"},
		{"batch 0", func(s *Settings) { s.Probe.BatchSize = 0 }, "batch_size"},
		{"lr", func(s *Settings) { s.Probe.LR = 200 }, "lr"},
		{"momentum 0 would be 0.9", func(s *Settings) { s.Probe.Momentum = 0 }, "momentum"},
		{"weight_decay", func(s *Settings) { s.Probe.WeightDecay = -1 }, "weight_decay"},
		{"schedule", func(s *Settings) { s.Probe.Schedule = "linear" }, "schedule"},
		{"knn_k 0", func(s *Settings) { s.KNNK = 0 }, "knn_k"},
		{"knn_k above 10000", func(s *Settings) { s.KNNK = 10001 }, "knn_k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			tt.edit(&s)
			err := s.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			fe := field.List(err)
			if len(fe) != 1 || fe[0].Key != tt.key || !errors.Is(err, ErrInput) || !errors.Is(err, probe.ErrInvalidConfig) ||
				!strings.HasPrefix(err.Error(), tt.key+" = ") {
				t.Errorf("Validate = %v, want one error naming %s", err, tt.key)
			}
		})
	}
	if got := DefaultSettings().KNN(0.07); got != (probe.KNNConfig{K: 200, Temperature: 0.07}) {
		t.Errorf("KNN = %+v", got)
	}
}
