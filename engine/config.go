package engine

import (
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/model"
)

// DTypes a ModelConfig may name.
const (
	Float32 = "float32"
	Float64 = "float64"
)

// ModelConfig is pipeline.yaml's model section: the network (model.Config,
// whose keys sit inline: arch, stem, widths, blocks, head, feat_dim) and
// the dtype the engine builds and trains it in. The zero value is usable:
// New fills unset fields from DefaultModelConfig.
type ModelConfig struct {
	model.Config `yaml:",inline"`
	// DType is the parameters' and activations' type, float32 or float64;
	// default float32.
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
	d := DefaultModelConfig()
	if c.Arch == "" {
		c.Arch = d.Arch
	}
	if c.Stem == "" {
		c.Stem = d.Stem
	}
	if c.Head == "" {
		c.Head = d.Head
	}
	if c.FeatDim == 0 {
		c.FeatDim = d.FeatDim
	}
	if c.InChannels == 0 {
		c.InChannels = d.InChannels
	}
	if c.DType == "" {
		c.DType = d.DType
	}
}

// Validate reports every field of c out of range, each a *field.Error
// named by its key in the model section and wrapping ErrConfig (and, for
// the network's keys, model.ErrConfig). It checks c as given: New fills
// unset fields first.
func (c ModelConfig) Validate() error {
	k := field.NewChecker(ErrConfig)
	k.Include("", c.Config.Validate())
	k.OneOf("dtype", c.DType, Float32, Float64)
	return k.Err()
}

// dtype is DType as a tensor type; c must be valid.
func (c ModelConfig) dtype() tensor.Dtype {
	if c.DType == Float64 {
		return tensor.Float64
	}
	return tensor.Float32
}
