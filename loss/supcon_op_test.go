package loss

import (
	"errors"
	"math"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/supflow/supflow/internal/fixtures"
)

// runGraph evaluates the loss node and d loss / d x on a tape machine.
func runGraph(t *testing.T, g *G.ExprGraph, cost, x *G.Node) (G.Value, G.Value) {
	t.Helper()
	grads, err := G.Grad(cost, x)
	if err != nil {
		t.Fatalf("Grad: %v", err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatalf("RunAll: %v", err)
	}
	return cost.Value(), grads[0].Value()
}

func TestSupConNodeFixtures(t *testing.T) {
	want := map[string]bool{
		"classic_bsz4_v2_d8":       true,
		"explicit_mask_bsz4_v2_d8": true,
		"simclr_bsz4_v2_d8":        true,
		"mode_one_bsz5_v3_d8":      true,
		"no_positive_bsz4_v1_d8":   true,
	}
	fixtures.ForEach(t, "supcon", func(t *testing.T, dir string) {
		for _, c := range fixtures.SupConCases(t, dir) {
			if !want[c.Name] {
				continue
			}
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				t.Run(c.Name+"/"+dt.String(), func(t *testing.T) {
					n := c.Bsz * c.NViews
					g := G.NewGraph()
					x := G.NewMatrix(g, dt, G.WithShape(n, c.Dim), G.WithName("features"))
					var mask *G.Node
					maskVal := c.FlatMask()
					if c.Labels != nil {
						m, err := LabelMask(c.Labels, tensor.Float64)
						if err != nil {
							t.Fatal(err)
						}
						maskVal = m.Data().([]float64)
					}
					if maskVal != nil {
						mask = G.NewMatrix(g, dt, G.WithShape(c.Bsz, c.Bsz), G.WithName("mask"))
						if err := G.Let(mask, denseOf(dt, []int{c.Bsz, c.Bsz}, maskVal)); err != nil {
							t.Fatal(err)
						}
					}
					cost, err := SupConNode(x, mask, c.NViews, supConConfig(c))
					if err != nil {
						t.Fatal(err)
					}
					if err := G.Let(x, denseOf(dt, []int{n, c.Dim}, fixtures.ViewMajor(c.Features))); err != nil {
						t.Fatal(err)
					}
					lossV, gradV := runGraph(t, g, cost, x)
					tolLoss, tolGrad := 1e-10, 1e-10
					if dt == tensor.Float32 {
						tolLoss, tolGrad = 1e-5, 1e-5
					}
					got, err := scalar(lossV)
					if err != nil {
						t.Fatal(err)
					}
					if e := relErr(got, c.Loss); e > tolLoss {
						t.Errorf("loss %.17g, want %.17g (rel err %g)", got, c.Loss, e)
					}
					var d float64
					switch gd := gradV.Data().(type) {
					case []float64:
						d = maxAbsDiff(gd, fixtures.ViewMajor(c.Grad))
					case []float32:
						d = maxAbsDiff(gd, fixtures.ViewMajor(c.Grad))
					}
					if d > tolGrad {
						t.Errorf("grad max abs diff %g", d)
					}
				})
			}
		}
	})
}

// TestSupConNodeChained checks that the op honours the incoming gradient
// when the loss is not the graph's last node (here: 3 * loss).
func TestSupConNodeChained(t *testing.T) {
	f := []float64{0.6, 0.8, 1, 0, 0, 1, 0.8, -0.6}
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("x"))
	l, err := SupConNode(x, nil, 2, SupConConfig{Temperature: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	cost, err := G.Mul(l, G.NewConstant(3.0))
	if err != nil {
		t.Fatal(err)
	}
	if err := G.Let(x, denseOf(tensor.Float64, []int{4, 2}, f)); err != nil {
		t.Fatal(err)
	}
	_, gradV := runGraph(t, g, cost, x)
	ref, err := SupCon(f, 2, 2, nil, nil, SupConConfig{Temperature: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, len(ref.Grad))
	for i, v := range ref.Grad {
		want[i] = 3 * v
	}
	if d := maxAbsDiff(gradV.Data().([]float64), want); d > 1e-14 {
		t.Errorf("chained grad off by %g", d)
	}
}

func TestSupConNodeInvalid(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("x"))
	x32 := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 2), G.WithName("x32"))
	vec := G.NewVector(g, tensor.Float64, G.WithShape(8), G.WithName("v"))
	ints := G.NewMatrix(g, tensor.Int, G.WithShape(4, 2), G.WithName("i"))
	mask := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 2), G.WithName("m"))
	mask3 := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 3), G.WithName("m3"))
	tests := []struct {
		name     string
		features *G.Node
		mask     *G.Node
		nViews   int
		cfg      SupConConfig
	}{
		{"nil features", nil, nil, 2, SupConConfig{}},
		{"vector features", vec, nil, 2, SupConConfig{}},
		{"int features", ints, nil, 2, SupConConfig{}},
		{"views do not divide", x, nil, 3, SupConConfig{}},
		{"zero views", x, nil, 0, SupConConfig{}},
		{"mask shape", x, mask3, 2, SupConConfig{}},
		{"mask dtype", x32, mask, 2, SupConConfig{}},
		{"bad config", x, nil, 2, SupConConfig{Temperature: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := SupConNode(tt.features, tt.mask, tt.nViews, tt.cfg); !errors.Is(err, ErrInput) {
				t.Errorf("err = %v, want ErrInput", err)
			}
		})
	}
}

// TestSupConNodeRuntimeError checks that bad values bound at run time come
// back as an error from the machine, not a panic.
func TestSupConNodeRuntimeError(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(4, 2), G.WithName("x"))
	if _, err := SupConNode(x, nil, 2, SupConConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := G.Let(x, denseOf(tensor.Float64, []int{4, 2}, []float64{1, 0, 0, 1, 1, 0, 0, math.NaN()})); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	// The tape machine flattens the error chain, so check the text.
	if err := vm.RunAll(); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("RunAll with NaN features: err = %v, want the NaN reported", err)
	}
}

func TestLabelMask(t *testing.T) {
	m, err := LabelMask([]int{3, 0, 3}, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 0, 1, 0, 1, 0, 1, 0, 1}
	got := m.Data().([]float32)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("mask %v, want %v", got, want)
		}
	}
	if _, err := LabelMask(nil, tensor.Float64); !errors.Is(err, ErrInput) {
		t.Errorf("empty labels: err = %v", err)
	}
	if _, err := LabelMask([]int{1}, tensor.Int); !errors.Is(err, ErrInput) {
		t.Errorf("int dtype: err = %v", err)
	}
}

// denseOf builds a tensor of dtype dt from float64 values.
func denseOf(dt tensor.Dtype, shape []int, v []float64) *tensor.Dense {
	if dt == tensor.Float32 {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(toF32(v)))
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64(nil), v...)))
}
