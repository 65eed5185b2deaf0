package transform

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/supflow/supflow/config/field"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config // Defaults applied first
		field string // "" when valid
	}{
		{"zero value is SupContrast", Config{}, ""},
		{"imagenet size, 4 views", Config{Size: 224, NViews: 4}, ""},
		{"smallest view", Config{Size: minViewSide}, ""},
		{"many views", Config{NViews: 300}, ""}, // the stage caps n_views at the wire's limit
		{"everything off", Config{FlipP: ptr(0.0), JitterP: ptr(0.0), GrayP: ptr(0.0), Antialias: ptr(false)}, ""},
		{"strong jitter", Config{Jitter: JitterConfig{Brightness: 1.5, Contrast: 2, Saturation: 3}}, ""},
		{"size negative", Config{Size: -1}, "size"},
		{"size below the minimum", Config{Size: minViewSide - 1}, "size"},
		{"size too big", Config{Size: maxViewSide + 1}, "size"},
		{"one view", Config{NViews: 1}, "n_views"},
		{"negative views", Config{NViews: -2}, "n_views"},
		{"scale above 1", Config{Scale: [2]float64{0.5, 1.5}}, "scale"},
		{"scale reversed", Config{Scale: [2]float64{0.8, 0.2}}, "scale"},
		{"scale zero min", Config{Scale: [2]float64{0, 1}}, "scale"},
		{"ratio reversed", Config{Ratio: [2]float64{2, 1}}, "ratio"},
		{"ratio negative", Config{Ratio: [2]float64{-1, 1}}, "ratio"},
		{"ratio infinite", Config{Ratio: [2]float64{1, math.Inf(1)}}, "ratio"},
		{"flip_p above 1", Config{FlipP: ptr(1.1)}, "flip_p"},
		{"jitter_p negative", Config{JitterP: ptr(-0.1)}, "jitter_p"},
		{"grayscale_p NaN", Config{GrayP: ptr(nan())}, "grayscale_p"},
		{"brightness negative", Config{Jitter: JitterConfig{Brightness: -0.4}}, "brightness"},
		{"contrast infinite", Config{Jitter: JitterConfig{Contrast: math.Inf(1)}}, "contrast"},
		{"saturation NaN", Config{Jitter: JitterConfig{Saturation: nan()}}, "saturation"},
		{"hue above 0.5", Config{Jitter: JitterConfig{Hue: 0.6}}, "hue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Defaults().Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
			if fe := field.List(err); len(fe) != 1 || fe[0].Key != tt.field {
				t.Errorf("Validate = %v, want one error naming %s", err, tt.field)
			}
			if !strings.HasPrefix(err.Error(), tt.field+" = ") {
				t.Errorf("error %q does not start with %s", err, tt.field)
			}
			if _, err := New(tt.cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field+" = ") {
				t.Errorf("New = %v, want ErrConfig naming %s", err, tt.field)
			}
		})
	}
}

// TestValidateIsStrict: Validate checks a Config as given, so a zero that a
// user wrote (pipeline.yaml's size: 0) is refused rather than defaulted;
// nil pointers stand for their defaults.
func TestValidateIsStrict(t *testing.T) {
	err := Config{}.Validate()
	var keys []string
	for _, e := range field.List(err) {
		keys = append(keys, e.Key)
	}
	if want := []string{"size", "n_views", "scale", "ratio"}; !slices.Equal(keys, want) {
		t.Errorf("Config{}.Validate names %v, want %v (err %v)", keys, want, err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	if a, b := DefaultConfig(), DefaultConfig(); a.FlipP == b.FlipP {
		t.Errorf("DefaultConfig shares pointers between calls")
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.Defaults()
	if c.Size != 32 || c.NViews != 2 || c.Scale != [2]float64{0.2, 1} || c.Ratio != [2]float64{0.75, 4.0 / 3} ||
		!*c.Antialias || *c.FlipP != 0.5 || *c.JitterP != 0.8 || *c.GrayP != 0.2 ||
		c.Jitter != (JitterConfig{0.4, 0.4, 0.4, 0.1}) {
		t.Errorf("defaults = %+v", c)
	}
}

// TestConfigYAML checks how pipeline.yaml maps onto Config: absent keys keep
// the defaults, explicit zeros stay zeros.
func TestConfigYAML(t *testing.T) {
	const doc = `
size: 224
n_views: 3
scale: [0.08, 1.0]
flip_p: 0
antialias: false
brightness: 0.8
contrast: 0.8
saturation: 0.8
hue: 0.2
grayscale_p: 0.1
`
	var c Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	c = c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Size != 224 || c.NViews != 3 || c.Scale != [2]float64{0.08, 1} || *c.FlipP != 0 || *c.Antialias ||
		c.Jitter != (JitterConfig{0.8, 0.8, 0.8, 0.2}) || *c.JitterP != 0.8 || *c.GrayP != 0.1 {
		t.Errorf("decoded %+v", c)
	}
}

// TestConfigYAMLKeys: the old nested jitter and gray_p keys are gone; strict
// decoding (as config does it) refuses them.
func TestConfigYAMLKeys(t *testing.T) {
	for _, doc := range []string{"gray_p: 0.1\n", "jitter: {hue: 0.2}\n"} {
		dec := yaml.NewDecoder(strings.NewReader(doc))
		dec.KnownFields(true)
		var c Config
		if err := dec.Decode(&c); err == nil {
			t.Errorf("%q decoded without error", doc)
		}
	}
}
