package model

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Architectures, stems and heads a Config may name.
var (
	Archs = []string{"resnet18", "resnet34", "resnet50", "resnet101"}
	Stems = []string{"cifar", "imagenet"}
	Heads = []string{"mlp", "linear"}
)

// Defaults applied to zero Config fields.
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

// Config describes a SupConResNet. The zero value is a CIFAR ResNet-18 with
// an MLP head to 128 features on 3-channel images.
type Config struct {
	// Arch is resnet18 or resnet34 (BasicBlock) or resnet50 or resnet101
	// (Bottleneck, expansion 4); empty means resnet18.
	Arch string `json:"arch" yaml:"arch"`
	// Stem is cifar (3x3 stride-1 conv, no max-pool) or imagenet (7x7
	// stride-2 conv and 3x3 stride-2 max-pool); empty means cifar.
	Stem string `json:"stem" yaml:"stem"`
	// WidthMult scales the stage widths 64, 128, 256, 512 (rounded, at
	// least 1); 0 means 1. Ignored when Widths is set.
	WidthMult float64 `json:"width_mult,omitempty" yaml:"width_mult,omitempty"`
	// Widths overrides the four stage widths (planes); all zero means
	// derived from WidthMult. The stem has the first stage's width.
	Widths [4]int `json:"widths" yaml:"widths"`
	// Blocks overrides the blocks per stage; all zero means Arch's.
	Blocks [4]int `json:"blocks" yaml:"blocks"`
	// InChannels is the number of image channels; 0 means 3.
	InChannels int `json:"in_channels" yaml:"in_channels"`
	// Head is mlp (Linear(d,d), ReLU, Linear(d,FeatDim)) or linear
	// (Linear(d,FeatDim)); empty means mlp.
	Head string `json:"head" yaml:"head"`
	// FeatDim is the projection size; 0 means 128.
	FeatDim int `json:"feat_dim" yaml:"feat_dim"`
}

// setDefaults fills zero fields and resolves Widths and Blocks.
func (c *Config) setDefaults() {
	if c.Arch == "" {
		c.Arch = DefaultArch
	}
	if c.Stem == "" {
		c.Stem = DefaultStem
	}
	if c.Head == "" {
		c.Head = DefaultHead
	}
	if c.FeatDim == 0 {
		c.FeatDim = DefaultFeatDim
	}
	if c.InChannels == 0 {
		c.InChannels = DefaultInChannels
	}
	if c.Widths == [4]int{} {
		mult := c.WidthMult
		if mult == 0 {
			mult = 1
		}
		for i, w := range baseWidths {
			c.Widths[i] = max(1, int(math.Round(float64(w)*mult)))
		}
	}
	if a, ok := archs[c.Arch]; ok && c.Blocks == [4]int{} {
		c.Blocks = a.blocks
	}
}

// Validate reports the first problem of c, zero fields taking their
// defaults; errors wrap ErrConfig and name the field.
func (c Config) Validate() error {
	if !(c.WidthMult >= 0) || math.IsInf(c.WidthMult, 0) {
		return fmt.Errorf("%w: width_mult %v must be finite and non-negative", ErrConfig, c.WidthMult)
	}
	c.setDefaults()
	for _, f := range []struct {
		field, value string
		allowed      []string
	}{{"arch", c.Arch, Archs}, {"stem", c.Stem, Stems}, {"head", c.Head, Heads}} {
		if !slices.Contains(f.allowed, f.value) {
			return fmt.Errorf("%w: %s %q: want one of %s", ErrConfig, f.field, f.value, strings.Join(f.allowed, ", "))
		}
	}
	for i := range 4 {
		if c.Widths[i] < 1 {
			return fmt.Errorf("%w: widths %v: every stage width must be positive", ErrConfig, c.Widths)
		}
		if c.Blocks[i] < 1 {
			return fmt.Errorf("%w: blocks %v: every stage needs at least one block", ErrConfig, c.Blocks)
		}
	}
	if c.InChannels < 1 {
		return fmt.Errorf("%w: in_channels %d must be positive", ErrConfig, c.InChannels)
	}
	if c.FeatDim < 1 {
		return fmt.Errorf("%w: feat_dim %d must be positive", ErrConfig, c.FeatDim)
	}
	return nil
}

// expansion is the ratio of a block's output channels to its planes.
func (c Config) expansion() int {
	if archs[c.Arch].bottleneck {
		return 4
	}
	return 1
}
