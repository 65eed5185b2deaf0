package augment

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string // "" when valid
	}{
		{"zero value is SupContrast", Config{}, ""},
		{"imagenet size, 4 views", Config{Size: 224, NViews: 4}, ""},
		{"everything off", Config{FlipP: ptr(0.0), JitterP: ptr(0.0), GrayP: ptr(0.0), Antialias: ptr(false)}, ""},
		{"size negative", Config{Size: -1}, "size"},
		{"size too big", Config{Size: maxViewSide + 1}, "size"},
		{"one view", Config{NViews: 1}, "n_views"},
		{"too many views", Config{NViews: 256}, "n_views"},
		{"scale above 1", Config{Scale: [2]float64{0.5, 1.5}}, "scale"},
		{"scale reversed", Config{Scale: [2]float64{0.8, 0.2}}, "scale"},
		{"scale zero min", Config{Scale: [2]float64{0, 1}}, "scale"},
		{"ratio reversed", Config{Ratio: [2]float64{2, 1}}, "ratio"},
		{"ratio negative", Config{Ratio: [2]float64{-1, 1}}, "ratio"},
		{"flip_p above 1", Config{FlipP: ptr(1.1)}, "flip_p"},
		{"jitter_p negative", Config{JitterP: ptr(-0.1)}, "jitter_p"},
		{"gray_p NaN", Config{GrayP: ptr(nan())}, "gray_p"},
		{"brightness negative", Config{Jitter: JitterConfig{Brightness: -0.4}}, "jitter.brightness"},
		{"hue above 0.5", Config{Jitter: JitterConfig{Hue: 0.6}}, "jitter.hue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.field+" = ") {
				t.Errorf("error %q does not name %s", err, tt.field)
			}
			if _, err := New(tt.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("New = %v, want ErrConfig", err)
			}
		})
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
jitter: {brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2}
`
	var c Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c = c.Defaults()
	if c.Size != 224 || c.NViews != 3 || c.Scale != [2]float64{0.08, 1} || *c.FlipP != 0 || *c.Antialias ||
		c.Jitter != (JitterConfig{0.8, 0.8, 0.8, 0.2}) || *c.JitterP != 0.8 || *c.GrayP != 0.2 {
		t.Errorf("decoded %+v", c)
	}
}
