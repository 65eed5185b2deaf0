package engine

import (
	"errors"
	"reflect"
	"testing"

	"github.com/supflow/supflow/config/field/fieldtest"
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

// TestModelConfigValidate: each bad value of the model section is one
// error naming its key, wrapping ErrConfig (and model's sentinel for the
// network's keys).
func TestModelConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ModelConfig)
		key  string // "" when valid
	}{
		{"defaults", func(*ModelConfig) {}, ""},
		{"float64", func(c *ModelConfig) { c.DType = Float64 }, ""},
		{"dtype", func(c *ModelConfig) { c.DType = "float16" }, "dtype"},
		{"empty dtype", func(c *ModelConfig) { c.DType = "" }, "dtype"},
		{"arch", func(c *ModelConfig) { c.Arch = "vgg" }, "arch"},
		{"widths", func(c *ModelConfig) { c.Widths = []int{1, 2, 3} }, "widths"},
		{"feat_dim", func(c *ModelConfig) { c.FeatDim = 0 }, "feat_dim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultModelConfig()
			tt.edit(&c)
			err := c.Validate()
			if err := fieldtest.Check(err, tt.key, ErrConfig); err != nil || tt.key == "" {
				if err != nil {
					t.Error(err)
				}
				return
			}
			if tt.key != "dtype" && !errors.Is(err, model.ErrConfig) {
				t.Errorf("Validate = %v does not wrap model.ErrConfig", err)
			}
		})
	}
}

// TestTrainConfigValidate: each bad value of the engine's train keys is one
// error naming its key, wrapping ErrConfig and the owning package's
// sentinel.
func TestTrainConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*TrainConfig)
		key   string // "" when valid
		owner error
	}{
		{"defaults", func(*TrainConfig) {}, "", nil},
		{"lars, step, warm", func(c *TrainConfig) {
			c.Optim.Optimizer, c.Schedule.Decay, c.Schedule.Warm, c.Schedule.Epochs = optim.OptimizerLARS, optim.DecayStep, true, 20
		}, "", nil},
		{"no momentum", func(c *TrainConfig) { c.Optim.Momentum = 0 }, "", nil},
		{"method", func(c *TrainConfig) { c.Method = "byol" }, "method", ErrConfig},
		{"lr", func(c *TrainConfig) { c.Schedule.BaseLR = 0 }, "lr", optim.ErrInvalid},
		{"schedule", func(c *TrainConfig) { c.Schedule.Decay = "linear" }, "schedule", optim.ErrInvalid},
		{"warm-up longer than the run", func(c *TrainConfig) {
			c.Schedule.Warm, c.Schedule.WarmEpochs, c.Schedule.Epochs = true, 11, 10
		}, "warm_epochs", optim.ErrInvalid},
		{"warm-up forced by the batch", func(c *TrainConfig) {
			c.Schedule.BatchSize, c.Schedule.WarmEpochs, c.Schedule.Epochs = 512, 0, 10
		}, "warm_epochs", optim.ErrInvalid},
		{"momentum", func(c *TrainConfig) { c.Optim.Momentum = 1 }, "momentum", optim.ErrInvalid},
		{"weight_decay", func(c *TrainConfig) { c.Optim.WeightDecay = -1 }, "weight_decay", optim.ErrInvalid},
		{"optimizer", func(c *TrainConfig) { c.Optim.Optimizer = "adam" }, "optimizer", optim.ErrInvalid},
		{"set decay_epochs", func(c *TrainConfig) { c.Schedule.DecayEpochs, c.Schedule.Epochs = []int{60, 80}, 100 }, "", nil},
		{"decay_epochs past the run", func(c *TrainConfig) {
			c.Schedule.DecayEpochs, c.Schedule.Epochs = []int{60, 100}, 100
		}, "decay_epochs", optim.ErrInvalid},
		{"decay_rate 0", func(c *TrainConfig) { c.Schedule.DecayRate = 0 }, "decay_rate", optim.ErrInvalid},
		{"warmup_from", func(c *TrainConfig) { c.Schedule.WarmupFrom = -1 }, "warmup_from", optim.ErrInvalid},
		{"trust_coefficient", func(c *TrainConfig) { c.Optim.TrustCoefficient = 2 }, "trust_coefficient", optim.ErrInvalid},
		{"temperature", func(c *TrainConfig) { c.Loss.Temperature = 0 }, "temperature", loss.ErrInput},
		{"base_temperature", func(c *TrainConfig) { c.Loss.BaseTemperature = 1000 }, "base_temperature", loss.ErrInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultTrainConfig()
			tt.edit(&c)
			if err := fieldtest.Check(c.Validate(), tt.key, ErrConfig, tt.owner); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestZeroTrainConfig: New defaults the zero value from DefaultTrainConfig
// but for momentum and weight decay, where 0 is none.
func TestZeroTrainConfig(t *testing.T) {
	var c TrainConfig
	c.setDefaults()
	want := DefaultTrainConfig()
	want.Optim.Momentum, want.Optim.WeightDecay = 0, 0
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaulted zero value %+v, want %+v", c, want)
	}
}

// TestOptimizerMetadataV1: a checkpoint records the optimizer and schedule
// as format version 1 did, whatever the types' field names: what cmd/supflow
// wrote for pipeline.yaml's defaults, and for LARS with warm-up; values equal
// to the defaults of the keys format 1 did not have are left out, as then.
func TestOptimizerMetadataV1(t *testing.T) {
	def := DefaultTrainConfig()
	def.Schedule.Epochs, def.Schedule.BatchSize = 100, 256
	lars := def
	lars.Optim.Optimizer, lars.Schedule.Decay, lars.Schedule.Warm = optim.OptimizerLARS, optim.DecayStep, true
	thousand := def
	thousand.Schedule.Decay, thousand.Schedule.Epochs = optim.DecayStep, 1000
	custom := lars
	custom.Optim.TrustCoefficient, custom.Schedule.DecayRate, custom.Schedule.WarmupFrom = 0.02, 0.5, 0.001
	custom.Schedule.DecayEpochs = []int{60, 80}
	for _, tt := range []struct {
		c    TrainConfig
		want string
	}{
		{def, `{"method":"supcon","optim":{"momentum":0.9,"weight_decay":0.0001},` +
			`"schedule":{"learning_rate":0.05,"epochs":100,"cosine":true,"batch_size":256,"warm_epochs":10}}`},
		// Step decay over 100 epochs records the milestones it derives (a
		// missing lr_decay_epochs means 700, 800, 900).
		{lars, `{"method":"supcon","optim":{"momentum":0.9,"weight_decay":0.0001,"lars":true},` +
			`"schedule":{"learning_rate":0.05,"epochs":100,"lr_decay_epochs":[70,80,90],"warm":true,"batch_size":256,"warm_epochs":10}}`},
		{thousand, `{"method":"supcon","optim":{"momentum":0.9,"weight_decay":0.0001},` +
			`"schedule":{"learning_rate":0.05,"epochs":1000,"batch_size":256,"warm_epochs":10}}`},
		{custom, `{"method":"supcon","optim":{"momentum":0.9,"weight_decay":0.0001,"lars":true,"trust_coefficient":0.02},` +
			`"schedule":{"learning_rate":0.05,"epochs":100,"lr_decay_rate":0.5,"lr_decay_epochs":[60,80],"warm":true,"batch_size":256,"warm_epochs":10,"warmup_from":0.001}}`},
	} {
		cfg := Config{Model: DefaultModelConfig(), Train: tt.c, Mean: []float64{0, 0, 0}, Std: []float64{1, 1, 1}}
		cfg.Model.Widths, cfg.Model.Blocks = []int{2, 2, 2, 2}, []int{1, 1, 1, 1}
		tr, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tr.optimMeta); got != tt.want {
			t.Errorf("metadata\n got %s\nwant %s", got, tt.want)
		}
	}
}
