package train

import (
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/config/field/fieldtest"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/probe"
)

// TestConfigValidate: each bad setting is one error naming its key in the
// train section, from Validate and from New.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		key  string // "" when valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"monitor on", func(c *Config) { c.Monitor.Every = 1 }, ""},
		{"batch of one", func(c *Config) { c.BatchSize = 1 }, "batch_size"},
		{"batch too large", func(c *Config) { c.BatchSize = 65537 }, "batch_size"},
		{"negative epochs", func(c *Config) { c.Epochs = -1 }, "epochs"},
		{"negative checkpoint interval", func(c *Config) { c.CheckpointEvery = -1 }, "checkpoint_every"},
		{"negative monitor interval", func(c *Config) { c.Monitor.Every = -1 }, "knn_every"},
		{"negative monitor samples", func(c *Config) { c.Monitor.Samples = -5 }, "knn_samples"},
		{"k above 10000", func(c *Config) { c.Monitor.KNN.K = 10001 }, "knn_k"},
		{"negative temperature", func(c *Config) { c.Monitor.KNN.Temperature = -1 }, "knn_temperature"},
	}
	deps := Deps{Engine: &fakeEngine{}, Store: storetest.New(t), Events: newFakeBus(), DeadLetters: newFakeBus()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			c.RunID, c.Views, c.Size, c.Channels = "r", 2, 2, 1
			_, newErr := New(t.Context(), c, deps)
			if tt.key == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate: %v, New: %v", err, newErr)
				}
				return
			}
			if err := fieldtest.Check(err, tt.key, ErrConfig); err != nil {
				t.Error(err)
			}
			if !errors.Is(newErr, ErrConfig) || !strings.Contains(newErr.Error(), tt.key+" = ") {
				t.Errorf("New = %v, want ErrConfig naming %s", newErr, tt.key)
			}
			if strings.HasPrefix(tt.key, "knn_k") && !errors.Is(err, probe.ErrInvalidConfig) {
				t.Errorf("Validate = %v does not wrap probe.ErrInvalidConfig", err)
			}
		})
	}
}

// TestValidateIsStrict: the zero value's settings are refused one by one
// (but knn_every, where 0 is off); New defaults them.
func TestValidateIsStrict(t *testing.T) {
	var keys []string
	for _, e := range field.List(Config{}.Validate()) {
		keys = append(keys, e.Key)
	}
	if want := []string{"batch_size", "epochs", "checkpoint_every", "log_every", "knn_samples", "knn_k", "knn_temperature"}; !slices.Equal(keys, want) {
		t.Errorf("zero Config: keys %v, want %v", keys, want)
	}
	deps := Deps{Engine: &fakeEngine{}, Store: storetest.New(t), Events: newFakeBus(), DeadLetters: newFakeBus()}
	s, err := New(t.Context(), Config{RunID: "r", Views: 2, Size: 2, Channels: 1}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.BatchSize != 256 || s.cfg.Epochs != 100 || s.cfg.CheckpointEvery != 10 || s.cfg.LogEvery != 10 || s.cfg.Monitor != DefaultConfig().Monitor {
		t.Errorf("defaulted config %+v", s.cfg)
	}
}

// TestLogEvery: the trainer logs the first step and every log_every-th;
// the curves record every step.
func TestLogEvery(t *testing.T) {
	var logs strings.Builder
	deps := Deps{Engine: &fakeEngine{}, Store: storetest.New(t), Events: newFakeBus(), DeadLetters: newFakeBus(),
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	s, err := New(t.Context(), Config{RunID: "r", Views: 2, Size: 2, Channels: 1, LogEvery: 3}, deps)
	if err != nil {
		t.Fatal(err)
	}
	for step := int64(1); step <= 7; step++ {
		s.onStep(engine.Stats{Step: step, Epoch: 1, Samples: 4, Duration: time.Millisecond}, 0)
	}
	var logged []string
	for _, m := range regexp.MustCompile(`msg=step step=(\d+) `).FindAllStringSubmatch(logs.String(), -1) {
		logged = append(logged, m[1])
	}
	if want := []string{"1", "3", "6"}; !slices.Equal(logged, want) {
		t.Errorf("steps logged %v, want %v", logged, want)
	}
	if n := len(s.curves.Points); n != 7 {
		t.Errorf("%d steps in the curves, want 7", n)
	}
}
