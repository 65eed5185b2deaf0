package transform

import (
	"math"

	"github.com/supflow/supflow/config/field"
)

// Config is the random policy of SupContrast's training transform:
// RandomResizedCrop(Size, Scale, Ratio), RandomHorizontalFlip(FlipP),
// RandomApply([ColorJitter(Jitter)], JitterP), RandomGrayscale(GrayP).
// The YAML tags are the keys of pipeline.yaml's augment section.
//
// Unset fields take SupContrast's values (DefaultConfig) in New and
// Defaults: a zero number, range or Jitter means the default, and the fields
// for which 0 is a meaningful setting are pointers, nil meaning the default.
// Turn colour jitter off with JitterP 0: a Jitter of four zero strengths is
// unset, so it too takes the default strengths.
type Config struct {
	// Size is the side of the square views, in [4, 1024]; default 32 (CIFAR).
	Size int `yaml:"size"`
	// NViews is the number of views per image, at least 2; default 2. The
	// augment stage caps it at what a view group message carries.
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
	// JitterP is the probability of applying ColorJitter, in [0, 1];
	// default 0.8.
	JitterP *float64 `yaml:"jitter_p"`
	// Jitter holds the ColorJitter strengths; default 0.4, 0.4, 0.4, 0.1.
	// Its keys sit directly in the augment section (brightness, contrast,
	// saturation, hue).
	Jitter JitterConfig `yaml:",inline"`
	// GrayP is the probability of RandomGrayscale, in [0, 1]; default 0.2.
	GrayP *float64 `yaml:"grayscale_p"`
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
	minViewSide = 4    // the smallest view pipeline.yaml has ever allowed
	maxViewSide = 1024 // a view travels inside one message
	minViews    = 2    // contrastive learning needs a positive pair
)

// DefaultConfig returns SupContrast's CIFAR policy with every field set.
// Each call returns new pointers.
func DefaultConfig() Config { return Config{}.Defaults() }

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

// Validate reports every field of c out of range, each a *field.Error named
// by its YAML key and wrapping ErrConfig. It checks c as given: a zero Size,
// NViews, Scale or Ratio is out of range (call Defaults first to fill them,
// as New does), while a nil pointer stands for its default and passes.
func (c Config) Validate() error {
	k := field.NewChecker(ErrConfig)
	k.IntIn("size", c.Size, minViewSide, maxViewSide)
	if c.NViews < minViews {
		k.Add("n_views", c.NViews, "an integer >= 2")
	}
	if !(c.Scale[0] > 0 && c.Scale[0] <= c.Scale[1] && c.Scale[1] <= 1) {
		k.Add("scale", c.Scale, "[lo, hi] with 0 < lo <= hi <= 1")
	}
	if !(c.Ratio[0] > 0 && c.Ratio[0] <= c.Ratio[1] && !math.IsInf(c.Ratio[1], 0)) {
		k.Add("ratio", c.Ratio, "[lo, hi] with 0 < lo <= hi, finite")
	}
	for _, p := range [...]struct {
		key string
		v   *float64
	}{{"flip_p", c.FlipP}, {"jitter_p", c.JitterP}, {"grayscale_p", c.GrayP}} {
		if p.v != nil {
			k.FloatIn(p.key, *p.v, 0, 1)
		}
	}
	for _, s := range [...]struct {
		key string
		v   float64
	}{{"brightness", c.Jitter.Brightness}, {"contrast", c.Jitter.Contrast}, {"saturation", c.Jitter.Saturation}} {
		if !(s.v >= 0 && s.v <= math.MaxFloat64) {
			k.Add(s.key, s.v, "a finite number >= 0")
		}
	}
	k.FloatIn("hue", c.Jitter.Hue, 0, 0.5)
	return k.Err()
}
