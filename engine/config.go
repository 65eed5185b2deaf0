package engine

import (
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/loss"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

// DTypes a ModelConfig may name.
const (
	Float32 = "float32"
	Float64 = "float64"
	// BFloat16 is mixed precision: convolutions and matmuls in bfloat16,
	// batch norm, the loss, the optimizer and the parameters (master
	// weights, and so the checkpoints) in float32. Only the XLA backend
	// (xla/trainer) computes it; CPU refuses it.
	BFloat16 = "bfloat16"
)

// ModelConfig is pipeline.yaml's model section: the network (model.Config,
// whose keys sit inline: arch, stem, widths, blocks, head, feat_dim) and
// the dtype the engine builds and trains it in. The zero value is usable:
// New fills unset fields from DefaultModelConfig.
type ModelConfig struct {
	model.Config `yaml:",inline"`
	// DType is the parameters' and activations' type, float32 or float64,
	// or bfloat16 (mixed precision, train.backend xla only); default
	// float32.
	DType string `yaml:"dtype"`
}

// DefaultModelConfig returns the defaults of every field: model's
// DefaultConfig in float32.
func DefaultModelConfig() ModelConfig {
	return ModelConfig{Config: model.DefaultConfig(), DType: Float32}
}

// setDefaults fills the unset fields from DefaultModelConfig (Widths and
// Blocks stay empty: model.New derives them).
func (c *ModelConfig) setDefaults() {
	c.Config.SetDefaults()
	if c.DType == "" {
		c.DType = DefaultModelConfig().DType
	}
}

// Validate reports every field of c out of range, each a *field.Error
// named by its key in the model section and wrapping ErrConfig (and, for
// the network's keys, model.ErrConfig). It checks c as given: New fills
// unset fields first.
func (c ModelConfig) Validate() error {
	k := field.NewChecker(ErrConfig)
	k.Include("", c.Config.Validate())
	k.OneOf("dtype", c.DType, Float32, Float64, BFloat16)
	return k.Err()
}

// dtype is the host's tensor type for DType (float32 for bfloat16's
// master weights); c must be valid.
func (c ModelConfig) dtype() tensor.Dtype {
	if c.DType == Float64 {
		return tensor.Float64
	}
	return tensor.Float32
}

// TrainConfig is the engine's part of pipeline.yaml's train section, whose
// keys sit there inline beside the train stage's (stages/train.Config):
// method; the learning-rate schedule (optim.Schedule: lr, schedule, warm,
// warm_epochs, decay_epochs, decay_rate, warmup_from); the optimizer
// (optim.Config: momentum, weight_decay, optimizer, trust_coefficient); the
// SupCon loss (loss.SupConConfig: temperature,
// base_temperature). Schedule.Epochs and Schedule.BatchSize are not keys:
// they are the train stage's epochs and batch_size, which the caller
// copies in (config.Train.EngineConfig does).
//
// The zero value is usable: New fills unset fields from DefaultTrainConfig,
// but for Momentum and WeightDecay, where 0 is none (the optimizer's own
// zero value), for DecayEpochs, whose empty value optim derives from the
// epochs (70%, 80%, 90% of them), and for the loss's fields that are not
// keys, which take loss's defaults.
type TrainConfig struct {
	// Method is MethodSupCon, MethodSimCLR or MethodCE; default supcon.
	Method   string            `yaml:"method"`
	Schedule optim.Schedule    `yaml:",inline"`
	Optim    optim.Config      `yaml:",inline"`
	Loss     loss.SupConConfig `yaml:",inline"` // MethodSupCon and MethodSimCLR
}

// DefaultTrainConfig returns pipeline.yaml's defaults, SupContrast's SupCon
// recipe: SGD with momentum 0.9 and weight decay 1e-4 from lr 0.05 on a
// cosine schedule down to lr*0.1^3 (step decay, when chosen, by 0.1 after
// 70%, 80% and 90% of the epochs; warm-up, when on, from 0.01 over 10
// epochs), temperature 0.1 and base temperature 0.07; LARS, when chosen,
// with trust coefficient 0.001.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		Method: MethodSupCon,
		Schedule: optim.Schedule{BaseLR: optim.DefaultLR, Decay: optim.DecayCosine, WarmEpochs: optim.DefaultWarmEpochs,
			DecayRate: optim.DefaultDecayRate, WarmupFrom: optim.DefaultWarmupFrom},
		Optim: optim.Config{Momentum: 0.9, WeightDecay: 1e-4, Optimizer: optim.OptimizerSGD,
			TrustCoefficient: optim.DefaultTrustCoefficient},
		Loss: loss.SupConConfig{Temperature: 0.1, BaseTemperature: loss.DefaultBaseTemperature},
	}
}

// setDefaults fills the unset keys but momentum, weight_decay and
// decay_epochs from DefaultTrainConfig.
func (c *TrainConfig) setDefaults() {
	d := DefaultTrainConfig()
	if c.Method == "" {
		c.Method = d.Method
	}
	if c.Schedule.BaseLR == 0 {
		c.Schedule.BaseLR = d.Schedule.BaseLR
	}
	if c.Schedule.Decay == "" {
		c.Schedule.Decay = d.Schedule.Decay
	}
	if c.Schedule.WarmEpochs == 0 {
		c.Schedule.WarmEpochs = d.Schedule.WarmEpochs
	}
	if c.Schedule.DecayRate == 0 {
		c.Schedule.DecayRate = d.Schedule.DecayRate
	}
	if c.Schedule.WarmupFrom == 0 {
		c.Schedule.WarmupFrom = d.Schedule.WarmupFrom
	}
	if c.Optim.Optimizer == "" {
		c.Optim.Optimizer = d.Optim.Optimizer
	}
	if c.Optim.TrustCoefficient == 0 {
		c.Optim.TrustCoefficient = d.Optim.TrustCoefficient
	}
	if c.Loss.Temperature == 0 {
		c.Loss.Temperature = d.Loss.Temperature
	}
	if c.Loss.BaseTemperature == 0 {
		c.Loss.BaseTemperature = d.Loss.BaseTemperature
	}
}

// Validate reports every field of c out of range, each a *field.Error
// named by its key in the train section and wrapping ErrConfig and the
// owning package's sentinel (optim.ErrInvalid, loss.ErrInput). It checks c
// as given: New fills unset fields first.
func (c TrainConfig) Validate() error {
	k := field.NewChecker(ErrConfig)
	k.OneOf("method", c.Method, MethodSupCon, MethodSimCLR, MethodCE)
	k.Include("", c.Schedule.Validate())
	k.Include("", c.Optim.Validate())
	k.Include("", c.Loss.Validate())
	return k.Err()
}
