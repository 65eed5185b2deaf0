package augment

import (
	"fmt"
	"math"
)

// Config is the random policy of SupContrast's training transform:
// RandomResizedCrop(Size, Scale, Ratio), RandomHorizontalFlip(FlipP),
// RandomApply([ColorJitter(Jitter)], JitterP), RandomGrayscale(GrayP).
// Unset fields take SupContrast's values: a zero number, range or Jitter
// means the default, and the fields for which 0 is a meaningful setting are
// pointers, nil meaning the default. Turn colour jitter off with JitterP 0.
type Config struct {
	// Size is the side of the square views; default 32 (CIFAR).
	Size int `yaml:"size"`
	// NViews is the number of views per image, in [2, 255]; default 2.
	NViews int `yaml:"n_views"`
	// Scale bounds the crop area as a fraction of the image area,
	// 0 < min <= max <= 1; default [0.2, 1].
	Scale [2]float64 `yaml:"scale"`
	// Ratio bounds the crop aspect ratio width/height, 0 < min <= max;
	// default [3/4, 4/3].
	Ratio [2]float64 `yaml:"ratio"`
	// Antialias selects the PIL-style antialiased bilinear resize (what
	// SupContrast gets on PIL images) over plain bilinear interpolation
	// (torchvision 0.14's tensor default); default true.
	Antialias *bool `yaml:"antialias"`
	// FlipP is the probability of a horizontal flip, in [0, 1]; default 0.5.
	FlipP *float64 `yaml:"flip_p"`
	// Jitter holds the ColorJitter strengths; default 0.4, 0.4, 0.4, 0.1.
	Jitter JitterConfig `yaml:"jitter"`
	// JitterP is the probability of applying ColorJitter, in [0, 1];
	// default 0.8.
	JitterP *float64 `yaml:"jitter_p"`
	// GrayP is the probability of RandomGrayscale, in [0, 1]; default 0.2.
	GrayP *float64 `yaml:"gray_p"`
}

// JitterConfig holds ColorJitter strengths: brightness, contrast and
// saturation factors are drawn uniformly from [max(0, 1-x), 1+x], the hue
// shift from [-Hue, Hue]. A zero strength leaves that op out.
type JitterConfig struct {
	Brightness float64 `yaml:"brightness"` // >= 0
	Contrast   float64 `yaml:"contrast"`   // >= 0
	Saturation float64 `yaml:"saturation"` // >= 0
	Hue        float64 `yaml:"hue"`        // in [0, 0.5]
}

// Bounds of Config fields.
const (
	maxViewSide = 1024 // a view travels inside one message
	maxViews    = 255  // messages.ViewGroup.NViews is a uint8
)

// Defaults returns c with every unset field set to SupContrast's value.
func (c Config) Defaults() Config {
	if c.Size == 0 {
		c.Size = 32
	}
	if c.NViews == 0 {
		c.NViews = 2
	}
	if c.Scale == [2]float64{} {
		c.Scale = [2]float64{0.2, 1}
	}
	if c.Ratio == [2]float64{} {
		c.Ratio = [2]float64{3.0 / 4, 4.0 / 3}
	}
	if c.Antialias == nil {
		c.Antialias = ptr(true)
	}
	if c.FlipP == nil {
		c.FlipP = ptr(0.5)
	}
	if c.Jitter == (JitterConfig{}) {
		c.Jitter = JitterConfig{Brightness: 0.4, Contrast: 0.4, Saturation: 0.4, Hue: 0.1}
	}
	if c.JitterP == nil {
		c.JitterP = ptr(0.8)
	}
	if c.GrayP == nil {
		c.GrayP = ptr(0.2)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// Validate reports the first field of c (after Defaults) out of range, by its
// YAML name.
func (c Config) Validate() error {
	c = c.Defaults()
	switch {
	case c.Size < 1 || c.Size > maxViewSide:
		return fmt.Errorf("%w: size = %d, want in [1, %d]", ErrConfig, c.Size, maxViewSide)
	case c.NViews < 2 || c.NViews > maxViews:
		return fmt.Errorf("%w: n_views = %d, want in [2, %d]", ErrConfig, c.NViews, maxViews)
	case !(c.Scale[0] > 0 && c.Scale[0] <= c.Scale[1] && c.Scale[1] <= 1):
		return fmt.Errorf("%w: scale = %v, want 0 < min <= max <= 1", ErrConfig, c.Scale)
	case !(c.Ratio[0] > 0 && c.Ratio[0] <= c.Ratio[1] && !math.IsInf(c.Ratio[1], 0)):
		return fmt.Errorf("%w: ratio = %v, want 0 < min <= max, finite", ErrConfig, c.Ratio)
	}
	for _, f := range [...]struct {
		name string
		v    float64
		max  float64
	}{
		{"flip_p", *c.FlipP, 1},
		{"jitter_p", *c.JitterP, 1},
		{"gray_p", *c.GrayP, 1},
		{"jitter.brightness", c.Jitter.Brightness, math.MaxFloat64},
		{"jitter.contrast", c.Jitter.Contrast, math.MaxFloat64},
		{"jitter.saturation", c.Jitter.Saturation, math.MaxFloat64},
		{"jitter.hue", c.Jitter.Hue, 0.5},
	} {
		if !(f.v >= 0 && f.v <= f.max) {
			if f.max == math.MaxFloat64 {
				return fmt.Errorf("%w: %s = %v, want >= 0, finite", ErrConfig, f.name, f.v)
			}
			return fmt.Errorf("%w: %s = %v, want in [0, %v]", ErrConfig, f.name, f.v, f.max)
		}
	}
	return nil
}
