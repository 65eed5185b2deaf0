package loss

import (
	"math"
	"testing"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/config/field/fieldtest"
)

// TestSupConConfigValidate: each bad value is one error naming its key,
// from Validate on a defaulted config and from SupCon.
func TestSupConConfigValidate(t *testing.T) {
	f := []float64{1, 0, 0, 1, 1, 0, 0, 1}
	tests := []struct {
		name string
		cfg  SupConConfig // defaults applied before Validate
		key  string       // "" when valid
	}{
		{"zero value", SupConConfig{}, ""},
		{"pipeline default", SupConConfig{Temperature: 0.1, BaseTemperature: 0.07}, ""},
		{"one anchor view", SupConConfig{ContrastMode: ContrastOne}, ""},
		{"negative temperature", SupConConfig{Temperature: -0.1}, "temperature"},
		{"tiny temperature", SupConConfig{Temperature: 1e-5}, "temperature"},
		{"huge temperature", SupConConfig{Temperature: 1000}, "temperature"},
		{"NaN base temperature", SupConConfig{BaseTemperature: math.NaN()}, "base_temperature"},
		{"unknown mode", SupConConfig{ContrastMode: "some"}, "contrast_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.SetDefaults()
			err := c.Validate()
			_, lossErr := SupCon(f, 2, 2, []int{0, 1}, nil, tt.cfg)
			if tt.key == "" {
				if err != nil || lossErr != nil {
					t.Fatalf("Validate: %v, SupCon: %v", err, lossErr)
				}
				return
			}
			for _, err := range []error{err, lossErr} {
				if err := fieldtest.Check(err, tt.key, ErrInput); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// Strict: the zero value names both temperatures.
	if fe := field.List(SupConConfig{}.Validate()); len(fe) != 2 {
		t.Errorf("zero SupConConfig: %v", fe)
	}
}
