package optim

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/safetensors"
	"gorgonia.org/tensor"
)

func dense64(shape []int, v ...float64) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

func dense32(shape []int, v ...float64) *tensor.Dense {
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f))
}

func values(t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float64:
		return d
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	}
	panic("unexpected dtype")
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol {
			t.Errorf("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i])
		}
	}
}

// TestSGDTwoSteps follows testdata/resnet/README.md: lr 0.05, momentum 0.9,
// weight decay 1e-4, two steps. Expected values are torch.optim.SGD's
// (PyTorch 1.13, float64) on the same numbers.
func TestSGDTwoSteps(t *testing.T) {
	tests := []struct {
		name     string
		nesterov bool
		mk       func([]int, ...float64) *tensor.Dense
		tol      float64
		wantP    []float64
		wantBuf  []float64
	}{
		{"float64", false, dense64, 1e-15, []float64{0.9574856250249999, -2.03872093755}, []float64{0.3501874995, 0.524618751}},
		{"float32", false, dense32, 1e-6, []float64{0.9574856250249999, -2.03872093755}, []float64{0.3501874995, 0.524618751}},
		{"nesterov float64", true, dense64, 1e-15, []float64{0.94172740134025, -2.0623286745555003}, []float64{0.35018524905, 0.5246176269}},
		{"nesterov float32", true, dense32, 1e-6, []float64{0.94172740134025, -2.0623286745555003}, []float64{0.35018524905, 0.5246176269}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := New(Config{Momentum: 0.9, WeightDecay: 1e-4, Nesterov: tt.nesterov})
			if err != nil {
				t.Fatal(err)
			}
			p := tt.mk([]int{2}, 1, -2)
			for _, g := range [][]float64{{0.5, 0.25}, {-0.1, 0.3}} {
				if err := o.Step(0.05, []Param{{Name: "w", Value: p, Grad: tt.mk([]int{2}, g...)}}); err != nil {
					t.Fatal(err)
				}
			}
			assertClose(t, "param", values(p), tt.wantP, tt.tol)
			assertClose(t, "buffer", values(o.Buffers()["w"]), tt.wantBuf, tt.tol)
		})
	}
}

// TestSGDResNetStep1 applies one step to every parameter of the tiny_basic
// fixture and compares with PyTorch's step1 tensors, on each fixture set.
func TestSGDResNetStep1(t *testing.T) {
	fixtures.ForEach(t, "resnet", testSGDResNetStep1)
}

func testSGDResNetStep1(t *testing.T, dir string) {
	f, err := safetensors.ReadFile(filepath.Join(dir, "tiny_basic.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "tiny_basic.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Parameters []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	get := func(name string) *tensor.Dense {
		v, shape, err := f.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		return dense64(shape, v...)
	}
	o, err := New(Config{Momentum: 0.9, WeightDecay: 1e-4})
	if err != nil {
		t.Fatal(err)
	}
	params := make([]Param, len(meta.Parameters))
	for i, p := range meta.Parameters {
		params[i] = Param{Name: p.Name, Value: get("init/" + p.Name), Grad: get("b4_16px/grad/" + p.Name)}
	}
	if err := o.Step(0.05, params); err != nil {
		t.Fatal(err)
	}
	for _, p := range params {
		assertClose(t, p.Name, values(p.Value), values(get("b4_16px/step1/"+p.Name)), 1e-15)
	}
	if len(o.Buffers()) != len(params) {
		t.Errorf("%d buffers for %d parameters", len(o.Buffers()), len(params))
	}
}

// TestSGDBuffersRestore checks that a restored optimizer continues exactly
// like the original (what a checkpoint resume relies on).
func TestSGDBuffersRestore(t *testing.T) {
	cfg := Config{Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pa := dense32([]int{2, 2}, 1, 2, 3, 4)
	if err := a.Step(0.1, []Param{{"w", pa, dense32([]int{2, 2}, 0.1, -0.2, 0.3, -0.4)}}); err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetBuffers(a.Buffers()); err != nil {
		t.Fatal(err)
	}
	pb := pa.Clone().(*tensor.Dense)
	g := dense32([]int{2, 2}, 0.5, 0.5, -0.5, 0.25)
	if err := a.Step(0.1, []Param{{"w", pa, g}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Step(0.1, []Param{{"w", pb, g}}); err != nil {
		t.Fatal(err)
	}
	assertClose(t, "restored param", values(pb), values(pa), 0)
	assertClose(t, "restored buffer", values(b.Buffers()["w"]), values(a.Buffers()["w"]), 0)
}

func TestSGDNoMomentum(t *testing.T) {
	o, err := New(Config{WeightDecay: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	p := dense64([]int{2}, 1, -1)
	if err := o.Step(0.1, []Param{{"b", p, dense64([]int{2}, 1, 1)}}); err != nil {
		t.Fatal(err)
	}
	// p - 0.1*(g + 0.5*p)
	assertClose(t, "param", values(p), []float64{1 - 0.1*1.5, -1 - 0.1*0.5}, 1e-16)
	if n := len(o.Buffers()); n != 0 {
		t.Errorf("%d momentum buffers without momentum", n)
	}
}

// TestLARS checks the trust ratio on a matrix and the exclusion of a
// vector (bias) from adaptation and weight decay; values by hand.
func TestLARS(t *testing.T) {
	o, err := New(Config{Momentum: 0.9, WeightDecay: 0.1, Optimizer: OptimizerLARS})
	if err != nil {
		t.Fatal(err)
	}
	if o.Config().TrustCoefficient != DefaultTrustCoefficient {
		t.Fatalf("trust coefficient %v", o.Config().TrustCoefficient)
	}
	w := dense64([]int{1, 2}, 3, 4) // ||w|| = 5
	// d = g + 0.1*w = (0.3, 0.4) + (0.3, 0.4) = (0.6, 0.8), ||d|| = 1
	// q = 0.001 * 5 / 1 = 0.005, d = (0.003, 0.004)
	bias := dense64([]int{1}, 1)
	step := func(gw, gb []float64) {
		t.Helper()
		err := o.Step(1, []Param{{"w", w, dense64([]int{1, 2}, gw...)}, {"b", bias, dense64([]int{1}, gb...)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	step([]float64{0.3, 0.4}, []float64{0.5})
	assertClose(t, "w step 1", values(w), []float64{3 - 0.003, 4 - 0.004}, 1e-15)
	// The bias is excluded: no decay, no adaptation: 1 - 1*0.5.
	assertClose(t, "b step 1", values(bias), []float64{0.5}, 1e-15)

	// Step 2, zero gradients: d = 0.1*w, so q = 0.001/0.1 = 0.01 and
	// d = 0.001*w = (0.002997, 0.003996); buf = 0.9*(0.003, 0.004) + d.
	step([]float64{0, 0}, []float64{0})
	assertClose(t, "w step 2", values(w), []float64{2.997 - 0.005697, 3.996 - 0.007596}, 1e-15)
	// Bias: buf = 0.9*0.5 + 0.
	assertClose(t, "b step 2", values(bias), []float64{0.5 - 0.45}, 1e-15)

	// Zero weights: trust ratio 1, plain SGD.
	z := dense64([]int{2, 1}, 0, 0)
	o2, err := New(Config{Optimizer: OptimizerLARS, TrustCoefficient: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Step(0.5, []Param{{"z", z, dense64([]int{2, 1}, 1, -1)}}); err != nil {
		t.Fatal(err)
	}
	assertClose(t, "z", values(z), []float64{-0.5, 0.5}, 0)
}

func TestConfigInvalid(t *testing.T) {
	for _, cfg := range []Config{
		{Momentum: -0.1},
		{Momentum: math.NaN()},
		{WeightDecay: -1},
		{WeightDecay: math.Inf(1)},
		{Nesterov: true},
		{Optimizer: OptimizerLARS, TrustCoefficient: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%+v): err = %v, want ErrInvalid", cfg, err)
		}
	}
}

func TestStepInvalid(t *testing.T) {
	v := dense64([]int{2}, 1, 2)
	g := dense64([]int{2}, 1, 2)
	view, err := dense64([]int{4}, 1, 2, 3, 4).Slice(tensor.S(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	intT := tensor.New(tensor.WithShape(2), tensor.WithBacking([]int{1, 2}))
	tests := []struct {
		name   string
		lr     float64
		params []Param
	}{
		{"negative lr", -1, []Param{{"a", v, g}}},
		{"NaN lr", math.NaN(), []Param{{"a", v, g}}},
		{"no name", 0.1, []Param{{"", v, g}}},
		{"duplicate", 0.1, []Param{{"a", v, g}, {"a", v, g}}},
		{"nil grad", 0.1, []Param{{"a", v, nil}}},
		{"nil value", 0.1, []Param{{"a", nil, g}}},
		{"shape mismatch", 0.1, []Param{{"a", v, dense64([]int{1, 2}, 1, 2)}}},
		{"dtype mismatch", 0.1, []Param{{"a", v, dense32([]int{2}, 1, 2)}}},
		{"int tensor", 0.1, []Param{{"a", intT, intT}}},
		{"view", 0.1, []Param{{"a", view.(*tensor.Dense), g}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := New(Config{Momentum: 0.9})
			if err != nil {
				t.Fatal(err)
			}
			before := append([]float64(nil), values(v)...)
			if err := o.Step(tt.lr, tt.params); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			assertClose(t, "untouched param", values(v), before, 0)
		})
	}
}

func TestBufferMismatch(t *testing.T) {
	o, err := New(Config{Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.SetBuffers(map[string]*tensor.Dense{"a": dense64([]int{3}, 1, 2, 3)}); err != nil {
		t.Fatal(err)
	}
	err = o.Step(0.1, []Param{{"a", dense64([]int{2}, 1, 2), dense64([]int{2}, 1, 2)}})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}
	if err := o.SetBuffers(map[string]*tensor.Dense{"a": nil}); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil buffer: err = %v", err)
	}
}

func TestGroups(t *testing.T) {
	param := func(n int) Param { return Param{Value: dense64([]int{n}, make([]float64, n)...)} }
	for _, tc := range []struct {
		sizes []int
		n     int
		want  [][2]int
	}{
		{[]int{10}, 4, [][2]int{{0, 1}}},
		{[]int{5, 5, 5, 5}, 2, [][2]int{{0, 2}, {2, 4}}},
		{[]int{100, 1, 1, 1}, 2, [][2]int{{0, 1}, {1, 4}}},
		{[]int{1, 1, 1, 100}, 2, [][2]int{{0, 4}}},
		{[]int{3, 3, 3}, 1, [][2]int{{0, 3}}},
	} {
		ps := make([]Param, len(tc.sizes))
		for i, n := range tc.sizes {
			ps[i] = param(n)
		}
		got := groups(ps, tc.n)
		if len(got) != len(tc.want) {
			t.Errorf("groups(%v, %d) = %v, want %v", tc.sizes, tc.n, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("groups(%v, %d) = %v, want %v", tc.sizes, tc.n, got, tc.want)
				break
			}
		}
	}
}
