package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/model"
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
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			fe := field.List(err)
			if len(fe) != 1 || fe[0].Key != tt.key || !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), tt.key+" = ") {
				t.Errorf("Validate = %v, want one ErrConfig naming %s", err, tt.key)
			}
			if tt.key != "dtype" && !errors.Is(err, model.ErrConfig) {
				t.Errorf("Validate = %v does not wrap model.ErrConfig", err)
			}
		})
	}
}
