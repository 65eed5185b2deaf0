package evaluate

import (
	"testing"

	"github.com/supflow/supflow/config/field/fieldtest"
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
			if err := fieldtest.Check(s.Validate(), tt.key, ErrInput, probe.ErrInvalidConfig); err != nil {
				t.Error(err)
			}
		})
	}
	if got := DefaultSettings().KNN(0.07); got != (probe.KNNConfig{K: 200, Temperature: 0.07}) {
		t.Errorf("KNN = %+v", got)
	}
}
