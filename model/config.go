package model

import (
	"fmt"
	"math"
	"slices"

	"github.com/supflow/supflow/config/field"
)

// Architectures, stems and heads a Config may name.
var (
	Archs = []string{"resnet18", "resnet34", "resnet50", "resnet101"}
	Stems = []string{"cifar", "imagenet"}
	Heads = []string{"mlp", "linear"}
)

// Defaults of Config (DefaultConfig).
const (
	DefaultArch       = "resnet18"
	DefaultStem       = "cifar"
	DefaultHead       = "mlp"
	DefaultFeatDim    = 128
	DefaultInChannels = 3
)

// baseWidths are the stage widths of every ResNet at width multiplier 1.
var baseWidths = [4]int{64, 128, 256, 512}

// archs maps each architecture to its blocks per stage and block type.
var archs = map[string]struct {
	blocks     [4]int
	bottleneck bool
}{
	"resnet18":  {blocks: [4]int{2, 2, 2, 2}},
	"resnet34":  {blocks: [4]int{3, 4, 6, 3}},
	"resnet50":  {blocks: [4]int{3, 4, 6, 3}, bottleneck: true},
	"resnet101": {blocks: [4]int{3, 4, 23, 3}, bottleneck: true},
}

// Config describes a SupConResNet. It is pipeline.yaml's model section but
// for dtype (the engine's, see engine.ModelConfig): the YAML tags are the
// section's keys. The JSON tags name the fields in a checkpoint's
// metadata and must not change.
//
// The zero value is usable: New fills unset fields from DefaultConfig, a
// CIFAR ResNet-18 with an MLP head to 128 features on 3-channel images.
type Config struct {
	// Arch is resnet18 or resnet34 (BasicBlock) or resnet50 or resnet101
	// (Bottleneck, expansion 4); default resnet18.
	Arch string `json:"arch" yaml:"arch"`
	// Stem is cifar (3x3 stride-1 conv, no max-pool) or imagenet (7x7
	// stride-2 conv and 3x3 stride-2 max-pool); default cifar.
	Stem string `json:"stem" yaml:"stem"`
	// WidthMult scales the stage widths 64, 128, 256, 512 (rounded, at
	// least 1); 0 means 1. Ignored when Widths is set. Not a pipeline.yaml
	// key.
	WidthMult float64 `json:"width_mult,omitempty" yaml:"-"`
	// Widths are the four stage widths (planes), each in [1, 4096]; empty
	// means derived from WidthMult (64, 128, 256, 512). The stem has the
	// first stage's width.
	Widths []int `json:"widths" yaml:"widths"`
	// Blocks are the blocks per stage, each in [1, 4096]; empty means
	// Arch's (2, 2, 2, 2 for resnet18).
	Blocks []int `json:"blocks" yaml:"blocks"`
	// InChannels is the number of image channels; default 3. The data
	// set decides it (cmd/supflow sets it from the manifest): not a
	// pipeline.yaml key.
	InChannels int `json:"in_channels" yaml:"-"`
	// Head is mlp (Linear(d,d), ReLU, Linear(d,FeatDim)) or linear
	// (Linear(d,FeatDim)); default mlp.
	Head string `json:"head" yaml:"head"`
	// FeatDim is the projection size, in [1, 65536]; default 128.
	FeatDim int `json:"feat_dim" yaml:"feat_dim"`
}

// Bounds of Config fields.
const (
	stages     = 4
	maxWidth   = 4096 // also the most blocks a stage may have
	maxFeatDim = 65536
)

// DefaultConfig returns the defaults of every field: a CIFAR ResNet-18
// with an MLP head to 128 features on 3-channel images, Widths and Blocks
// left empty (derived).
func DefaultConfig() Config {
	return Config{Arch: DefaultArch, Stem: DefaultStem, Head: DefaultHead, FeatDim: DefaultFeatDim, InChannels: DefaultInChannels}
}

// SetDefaults fills c's zero fields from DefaultConfig. Widths and Blocks
// stay as they are: empty means the arch's, which New derives.
func (c *Config) SetDefaults() {
	d := DefaultConfig()
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
}

// setDefaults is SetDefaults plus the resolved Widths and Blocks (given
// ones are copied, not shared with the caller).
func (c *Config) setDefaults() {
	c.SetDefaults()
	c.Widths, c.Blocks = slices.Clone(c.Widths), slices.Clone(c.Blocks)
	if len(c.Widths) == 0 && validMult(c.WidthMult) {
		mult := c.WidthMult
		if mult == 0 {
			mult = 1
		}
		c.Widths = make([]int, stages)
		for i, w := range baseWidths {
			c.Widths[i] = max(1, int(math.Round(float64(w)*mult)))
		}
	}
	if a, ok := archs[c.Arch]; ok && len(c.Blocks) == 0 {
		c.Blocks = slices.Clone(a.blocks[:])
	}
}

func validMult(m float64) bool { return m >= 0 && !math.IsInf(m, 0) }

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its key and wrapping ErrConfig. It checks c as
// given: an empty Arch or a zero FeatDim is refused (New fills them
// first), while empty Widths and Blocks mean the derived ones.
func (c Config) Validate() error {
	k := field.NewChecker(ErrConfig)
	k.OneOf("arch", c.Arch, Archs...)
	k.OneOf("stem", c.Stem, Stems...)
	if !validMult(c.WidthMult) {
		k.Add("width_mult", c.WidthMult, "a finite number >= 0 (0 = 1)")
	}
	for _, s := range []struct {
		key, empty string
		v          []int
	}{{"widths", "the default 64,128,256,512", c.Widths}, {"blocks", "the arch's", c.Blocks}} {
		if len(s.v) == 0 {
			continue
		}
		if len(s.v) != stages || slices.ContainsFunc(s.v, func(n int) bool { return n < 1 || n > maxWidth }) {
			k.Add(s.key, s.v, fmt.Sprintf("empty (%s) or %d integers in [1, %d], one per stage", s.empty, stages, maxWidth))
		}
	}
	if c.InChannels < 1 {
		k.Add("in_channels", c.InChannels, "an integer >= 1")
	}
	k.OneOf("head", c.Head, Heads...)
	k.IntIn("feat_dim", c.FeatDim, 1, maxFeatDim)
	return k.Err()
}

// expansion is the ratio of a block's output channels to its planes.
func (c Config) expansion() int {
	if archs[c.Arch].bottleneck {
		return 4
	}
	return 1
}
