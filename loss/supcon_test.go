package loss

import (
	"errors"
	"math"
	"testing"

	"github.com/supflow/supflow/internal/fixtures"
)

// supConConfig is the loss configuration of case c.
func supConConfig(c fixtures.SupConCase) SupConConfig {
	return SupConConfig{Temperature: c.Temperature, BaseTemperature: c.BaseTemperature, ContrastMode: ContrastMode(c.ContrastMode)}
}

func relErr(got, want float64) float64 {
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
}

func maxAbsDiff[T Float](got []T, want []float64) float64 {
	var m float64
	for i := range want {
		m = math.Max(m, math.Abs(float64(got[i])-want[i]))
	}
	return m
}

func toF32(x []float64) []float32 {
	if x == nil {
		return nil
	}
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func TestSupConFixturesFloat64(t *testing.T) {
	fixtures.ForEach(t, "supcon", func(t *testing.T, dir string) {
		for _, c := range fixtures.SupConCases(t, dir) {
			t.Run(c.Name, func(t *testing.T) {
				r, err := SupCon(fixtures.ViewMajor(c.Features), c.NViews, c.Dim, c.Labels, c.FlatMask(), supConConfig(c))
				if err != nil {
					t.Fatal(err)
				}
				if e := relErr(r.Loss, c.Loss); e > 1e-10 {
					t.Errorf("loss %.17g, want %.17g (rel err %g)", r.Loss, c.Loss, e)
				}
				if d := maxAbsDiff(r.Grad, fixtures.ViewMajor(c.Grad)); d > 1e-10 {
					t.Errorf("grad max abs diff %g", d)
				}
				var wantAnchor, wantPos []float64
				for v := range c.AnchorLosses {
					wantAnchor = append(wantAnchor, c.AnchorLosses[v]...)
					wantPos = append(wantPos, c.AnchorPositives[v]...)
				}
				if len(r.AnchorLoss) != len(wantAnchor) {
					t.Fatalf("%d anchors, want %d", len(r.AnchorLoss), len(wantAnchor))
				}
				for a := range wantAnchor {
					if math.Abs(r.AnchorLoss[a]-wantAnchor[a]) > 1e-10*math.Max(1, math.Abs(wantAnchor[a])) {
						t.Errorf("anchor %d loss %.17g, want %.17g", a, r.AnchorLoss[a], wantAnchor[a])
					}
					if r.Positives[a] != wantPos[a] {
						t.Errorf("anchor %d positives %v, want %v", a, r.Positives[a], wantPos[a])
					}
				}
			})
		}
	})
}

func TestSupConFixturesFloat32(t *testing.T) {
	fixtures.ForEach(t, "supcon", func(t *testing.T, dir string) {
		for _, c := range fixtures.SupConCases(t, dir) {
			t.Run(c.Name, func(t *testing.T) {
				r, err := SupCon(toF32(fixtures.ViewMajor(c.Features)), c.NViews, c.Dim, c.Labels, toF32(c.FlatMask()), supConConfig(c))
				if err != nil {
					t.Fatal(err)
				}
				if e := relErr(r.Loss, c.Loss); e > 1e-5 {
					t.Errorf("loss %.9g, want %.9g (rel err %g)", r.Loss, c.Loss, e)
				}
				if d := maxAbsDiff(r.Grad, fixtures.ViewMajor(c.Grad)); d > 1e-5 {
					t.Errorf("grad max abs diff %g", d)
				}
			})
		}
	})
}

// TestSupConLargeLogits checks the stabilisation: unnormalised features with
// logits in the thousands must give a finite loss and gradient.
func TestSupConLargeLogits(t *testing.T) {
	f := []float64{30, 0, 29, 1, -30, 0, 0, 30}
	for _, cfg := range []SupConConfig{{}, {ContrastMode: ContrastOne}} {
		r, err := SupCon(f, 2, 2, []int{0, 1}, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) || firstNonFinite(r.Grad) >= 0 {
			t.Errorf("%+v: loss %v grad %v", cfg, r.Loss, r.Grad)
		}
	}
}

func TestSupConInvalid(t *testing.T) {
	f := []float64{1, 0, 0, 1, 1, 0, 0, 1} // 4 rows of dim 2
	tests := []struct {
		name     string
		features []float64
		nViews   int
		dim      int
		labels   []int
		mask     []float64
		cfg      SupConConfig
	}{
		{"labels and mask", f, 2, 2, []int{0, 1}, []float64{1, 0, 0, 1}, SupConConfig{}},
		{"NaN feature", []float64{1, 0, math.NaN(), 1, 1, 0, 0, 1}, 2, 2, nil, nil, SupConConfig{}},
		{"Inf feature", []float64{1, 0, 0, 1, 1, math.Inf(-1), 0, 1}, 2, 2, nil, nil, SupConConfig{}},
		{"ragged rows", f[:7], 2, 2, nil, nil, SupConConfig{}},
		{"views do not divide rows", f, 3, 2, nil, nil, SupConConfig{}},
		{"zero views", f, 0, 2, nil, nil, SupConConfig{}},
		{"zero dim", f, 2, 0, nil, nil, SupConConfig{}},
		{"empty", nil, 1, 2, nil, nil, SupConConfig{}},
		{"single row", f[:2], 1, 2, nil, nil, SupConConfig{}},
		{"short labels", f, 2, 2, []int{0}, nil, SupConConfig{}},
		{"short mask", f, 2, 2, nil, []float64{1, 0, 0}, SupConConfig{}},
		{"negative mask", f, 2, 2, nil, []float64{1, -1, 0, 1}, SupConConfig{}},
		{"NaN mask", f, 2, 2, nil, []float64{1, math.NaN(), 0, 1}, SupConConfig{}},
		{"negative temperature", f, 2, 2, nil, nil, SupConConfig{Temperature: -0.1}},
		{"NaN base temperature", f, 2, 2, nil, nil, SupConConfig{BaseTemperature: math.NaN()}},
		{"bad mode", f, 2, 2, nil, nil, SupConConfig{ContrastMode: "some"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SupCon(tt.features, tt.nViews, tt.dim, tt.labels, tt.mask, tt.cfg)
			if !errors.Is(err, ErrInput) {
				t.Errorf("err = %v, want ErrInput", err)
			}
		})
	}
}

// TestSupConSimCLRIsIdentityMask checks that no labels and no mask means the
// identity mask, as in SupContrast.
func TestSupConSimCLRIsIdentityMask(t *testing.T) {
	f := []float64{0.6, 0.8, 1, 0, 0, 1, 0.8, -0.6, -1, 0, 0.28, 0.96}
	a, err := SupCon(f, 2, 2, nil, nil, SupConConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := SupCon(f, 2, 2, nil, []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}, SupConConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Loss != b.Loss {
		t.Errorf("SimCLR loss %v, identity mask %v", a.Loss, b.Loss)
	}
}

func BenchmarkSupCon(b *testing.B) {
	const bsz, views, dim = 256, 2, 128
	b.Run("float32", func(b *testing.B) { benchSupCon[float32](b, bsz, views, dim) })
	b.Run("float64", func(b *testing.B) { benchSupCon[float64](b, bsz, views, dim) })
}

func benchSupCon[T Float](b *testing.B, bsz, views, dim int) {
	f := make([]T, bsz*views*dim)
	for i := range f {
		f[i] = T(math.Sin(float64(i)))
	}
	labels := make([]int, bsz)
	for i := range labels {
		labels[i] = i % 10
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := SupCon(f, views, dim, labels, nil, SupConConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}
