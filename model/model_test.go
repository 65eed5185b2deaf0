package model_test

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/statedict"
)

// TestConfigValidate: each bad value is one error naming its key (the
// model section's key in pipeline.yaml), from Validate on a defaulted
// Config and from New.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  model.Config // New's defaults applied before Validate
		key  string       // "" when valid
	}{
		{name: "zero value"},
		{name: "resnet101 imagenet linear", cfg: model.Config{Arch: "resnet101", Stem: "imagenet", Head: "linear"}},
		{name: "explicit widths and blocks", cfg: model.Config{Widths: []int{8, 16, 32, 64}, Blocks: []int{1, 1, 1, 1}}},
		{name: "unknown arch", cfg: model.Config{Arch: "vgg16"}, key: "arch"},
		{name: "unknown stem", cfg: model.Config{Stem: "tiny"}, key: "stem"},
		{name: "unknown head", cfg: model.Config{Head: "mlp2"}, key: "head"},
		{name: "negative width mult", cfg: model.Config{WidthMult: -1}, key: "width_mult"},
		{name: "NaN width mult", cfg: model.Config{WidthMult: math.NaN()}, key: "width_mult"},
		{name: "partial widths", cfg: model.Config{Widths: []int{8, 16, 0, 64}}, key: "widths"},
		{name: "two widths", cfg: model.Config{Widths: []int{8, 16}}, key: "widths"},
		{name: "width too large", cfg: model.Config{Widths: []int{8, 16, 32, 5000}}, key: "widths"},
		{name: "partial blocks", cfg: model.Config{Blocks: []int{1, 0, 1, 1}}, key: "blocks"},
		{name: "five blocks", cfg: model.Config{Blocks: []int{1, 1, 1, 1, 1}}, key: "blocks"},
		{name: "negative channels", cfg: model.Config{InChannels: -3}, key: "in_channels"},
		{name: "negative feat dim", cfg: model.Config{FeatDim: -1}, key: "feat_dim"},
		{name: "feat dim too large", cfg: model.Config{FeatDim: 65537}, key: "feat_dim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, def := tc.cfg, model.DefaultConfig()
			d.Arch, d.Stem, d.Head = cmp.Or(d.Arch, def.Arch), cmp.Or(d.Stem, def.Stem), cmp.Or(d.Head, def.Head)
			if d.FeatDim == 0 {
				d.FeatDim = def.FeatDim
			}
			if d.InChannels == 0 {
				d.InChannels = def.InChannels
			}
			err := d.Validate()
			_, newErr := model.New(tc.cfg, tensor.Float32, 1)
			if tc.key == "" {
				if err != nil || newErr != nil {
					t.Errorf("Validate: %v, New: %v", err, newErr)
				}
				return
			}
			fe := field.List(err)
			if len(fe) != 1 || fe[0].Key != tc.key || !errors.Is(err, model.ErrConfig) || !strings.HasPrefix(err.Error(), tc.key+" = ") {
				t.Errorf("Validate = %v, want one ErrConfig naming %s", err, tc.key)
			}
			if !errors.Is(newErr, model.ErrConfig) || !strings.Contains(fmt.Sprint(newErr), tc.key+" = ") {
				t.Errorf("New = %v, want ErrConfig naming %s", newErr, tc.key)
			}
		})
	}
}

// TestValidateIsStrict: Validate checks a Config as given, so the zero
// value (a section whose keys were written empty or 0) is refused key by
// key; DefaultConfig is valid, and New accepts the zero value.
func TestValidateIsStrict(t *testing.T) {
	var keys []string
	for _, e := range field.List(model.Config{}.Validate()) {
		keys = append(keys, e.Key)
	}
	if want := []string{"arch", "stem", "in_channels", "head", "feat_dim"}; !slices.Equal(keys, want) {
		t.Errorf("zero Config: keys %v, want %v", keys, want)
	}
	if err := model.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	m, err := model.New(model.Config{}, tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Config()
	if got.Arch != "resnet18" || !slices.Equal(got.Widths, []int{64, 128, 256, 512}) || !slices.Equal(got.Blocks, []int{2, 2, 2, 2}) || got.InChannels != 3 {
		t.Errorf("resolved config %+v", got)
	}
}

// TestNewCopiesSlices: the model neither keeps nor hands out the caller's
// Widths and Blocks.
func TestNewCopiesSlices(t *testing.T) {
	w := []int{4, 8, 8, 8}
	m, err := model.New(model.Config{Widths: w, Blocks: []int{1, 1, 1, 1}, FeatDim: 8}, tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	w[0] = 99
	c := m.Config()
	c.Widths[1] = 99
	if got := m.Config().Widths; !slices.Equal(got, []int{4, 8, 8, 8}) {
		t.Errorf("widths %v", got)
	}
}

func TestNewDtype(t *testing.T) {
	if _, err := model.New(model.Config{}, tensor.Int, 1); !errors.Is(err, model.ErrConfig) {
		t.Errorf("New(int) error %v, want ErrConfig", err)
	}
}

func paramCount(m *model.Model, prefix string) int {
	n := 0
	for _, p := range m.ParamInfos() {
		if strings.HasPrefix(p.Name, prefix) {
			n += tensor.Shape(p.Shape).TotalSize()
		}
	}
	return n
}

// TestArchitectures checks the structure of every architecture: encoder
// parameter counts of the full-width nets against PyTorch's, and names and
// counts of blocks and shortcuts at reduced width.
func TestArchitectures(t *testing.T) {
	tests := []struct {
		cfg        model.Config
		encParams  int // 0: not checked
		encDim     int
		blocks     int
		shortcuts  int
		headParams int
	}{
		// torchvision resnet18/50 minus fc, with the 3x3 CIFAR or 7x7 stem.
		{cfg: model.Config{Arch: "resnet18"}, encParams: 11168832, encDim: 512, blocks: 8, shortcuts: 3, headParams: 512*512 + 512 + 512*128 + 128},
		{cfg: model.Config{Arch: "resnet18", Stem: "imagenet", Head: "linear", FeatDim: 64}, encParams: 11176512, encDim: 512, blocks: 8, shortcuts: 3, headParams: 512*64 + 64},
		{cfg: model.Config{Arch: "resnet50"}, encParams: 23500352, encDim: 2048, blocks: 16, shortcuts: 4, headParams: 2048*2048 + 2048 + 2048*128 + 128},
		{cfg: model.Config{Arch: "resnet34", WidthMult: 0.125}, encDim: 64, blocks: 16, shortcuts: 3, headParams: 64*64 + 64 + 64*128 + 128},
		{cfg: model.Config{Arch: "resnet101", WidthMult: 0.0625, InChannels: 1}, encDim: 128, blocks: 33, shortcuts: 4, headParams: 128*128 + 128 + 128*128 + 128},
	}
	for _, tc := range tests {
		t.Run(tc.cfg.Arch+"_"+tc.cfg.Stem+"_"+tc.cfg.Head, func(t *testing.T) {
			m, err := model.New(tc.cfg, tensor.Float32, 1)
			if err != nil {
				t.Fatal(err)
			}
			if tc.encParams != 0 {
				if got := paramCount(m, "encoder."); got != tc.encParams {
					t.Errorf("encoder parameters %d, want %d", got, tc.encParams)
				}
			}
			if got := paramCount(m, "head"); got != tc.headParams {
				t.Errorf("head parameters %d, want %d", got, tc.headParams)
			}
			if m.EncoderDim() != tc.encDim {
				t.Errorf("EncoderDim %d, want %d", m.EncoderDim(), tc.encDim)
			}
			blocks, shortcuts := 0, 0
			for _, p := range m.ParamInfos() {
				switch {
				case strings.HasSuffix(p.Name, ".conv1.weight") && strings.Contains(p.Name, ".layer"):
					blocks++
				case strings.HasSuffix(p.Name, ".shortcut.0.weight"):
					shortcuts++
				}
			}
			if blocks != tc.blocks || shortcuts != tc.shortcuts {
				t.Errorf("%d blocks, %d shortcuts, want %d, %d", blocks, shortcuts, tc.blocks, tc.shortcuts)
			}
			bns := 0 // a batch norm's weight is its only 1-d weight
			for _, p := range m.ParamInfos() {
				if strings.HasSuffix(p.Name, ".weight") && len(p.Shape) == 1 {
					bns++
				}
			}
			if bufs := len(m.BufferInfos()); bufs != 3*bns {
				t.Errorf("%d buffers for %d batch norms", bufs, bns)
			}
		})
	}
}

// TestInit checks the initial distributions and their dependence on the
// seed alone.
func TestInit(t *testing.T) {
	cfg := model.Config{Widths: []int{16, 32, 64, 128}, Blocks: []int{1, 1, 1, 1}}
	m, err := model.New(cfg, tensor.Float64, 42)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		v := p.Value.Float64s()
		s := p.Shape()
		switch {
		case len(s) == 4:
			var ss float64
			for _, x := range v {
				ss += x * x
			}
			std, want := math.Sqrt(ss/float64(len(v))), math.Sqrt(2/float64(s[0]*s[2]*s[3]))
			if len(v) > 1000 && math.Abs(std/want-1) > 0.1 {
				t.Errorf("%s: std %g, want about %g", p.Name, std, want)
			}
		case strings.HasPrefix(p.Name, "head"):
			bound := 1 / math.Sqrt(float64(m.EncoderDim()))
			for _, x := range v {
				if math.Abs(x) > bound {
					t.Fatalf("%s: %g outside ±%g", p.Name, x, bound)
				}
			}
		case strings.HasSuffix(p.Name, ".weight"):
			for _, x := range v {
				if x != 1 {
					t.Fatalf("%s: %g, want 1", p.Name, x)
				}
			}
		default:
			for _, x := range v {
				if x != 0 {
					t.Fatalf("%s: %g, want 0", p.Name, x)
				}
			}
		}
	}
	same, _ := model.New(cfg, tensor.Float64, 42)
	other, _ := model.New(cfg, tensor.Float64, 43)
	const w = "encoder.conv1.weight"
	a, b, c := m.State()[w].F64[0], same.State()[w].F64[0], other.State()[w].F64[0]
	if a != b || a == c {
		t.Errorf("conv1 init with seeds 42, 42, 43: %g, %g, %g", a, b, c)
	}
}

func tinyConfig() model.Config {
	return model.Config{Widths: []int{4, 8, 8, 8}, Blocks: []int{1, 1, 1, 1}, FeatDim: 8}
}

func randBatch(dt tensor.Dtype, shape ...int) *tensor.Dense {
	rng := rand.New(rand.NewPCG(1, 2))
	t := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	switch v := t.Data().(type) {
	case []float64:
		for i := range v {
			v[i] = rng.NormFloat64()
		}
	case []float32:
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
	}
	return t
}

func TestLoadStateErrors(t *testing.T) {
	m, err := model.New(tinyConfig(), tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	const w = "encoder.conv1.weight"
	base := m.State()[w].F64[0]
	edit := func(f func(map[string]statedict.Tensor)) map[string]statedict.Tensor {
		st := m.State()
		st[w].F64[0] = 1e6 // must never be applied
		f(st)
		return st
	}
	tests := []struct {
		name  string
		state map[string]statedict.Tensor
		want  string
	}{
		{"missing", edit(func(s map[string]statedict.Tensor) { delete(s, "head.2.bias") }), `"head.2.bias" missing`},
		{"unknown", edit(func(s map[string]statedict.Tensor) {
			s["head.9.bias"] = statedict.Tensor{Shape: []int{1}, F64: []float64{0}}
		}), `unknown tensor "head.9.bias"`},
		{"shape", edit(func(s map[string]statedict.Tensor) {
			s[w] = statedict.Tensor{Shape: []int{4, 3, 9}, F64: make([]float64, 4*3*9)}
		}), `"encoder.conv1.weight" has shape [4 3 9]`},
		{"data length", edit(func(s map[string]statedict.Tensor) {
			x := s["encoder.bn1.weight"]
			x.F64 = x.F64[:2]
			s["encoder.bn1.weight"] = x
		}), `"encoder.bn1.weight": statedict: invalid tensor: 2 values`},
		{"dtype", edit(func(s map[string]statedict.Tensor) {
			s["encoder.bn1.bias"] = statedict.Tensor{Shape: []int{4}, F32: make([]float32, 4)}
		}), `"encoder.bn1.bias" holds float32, model wants float64`},
		{"float count", edit(func(s map[string]statedict.Tensor) {
			s["encoder.bn1.num_batches_tracked"] = statedict.Tensor{Shape: []int{}, F64: []float64{1}}
		}), `"encoder.bn1.num_batches_tracked" holds float64, model wants int64`},
		{"negative count", edit(func(s map[string]statedict.Tensor) {
			s["encoder.bn1.num_batches_tracked"] = statedict.Tensor{Shape: []int{}, I64: []int64{-1}}
		}), "not a count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := m.LoadState(tc.state)
			if !errors.Is(err, model.ErrState) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadState error %v, want ErrState mentioning %q", err, tc.want)
			}
			if got := m.State()[w].F64[0]; got != base {
				t.Errorf("failed LoadState changed %s to %g", w, got)
			}
		})
	}
}

// TestStateRoundTrip copies a trained state into a fresh float32 model and
// checks that both give the same eval-mode output.
func TestStateRoundTrip(t *testing.T) {
	src, err := model.New(tinyConfig(), tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := randBatch(tensor.Float32, 4, 3, 8, 8)
	if _, err := src.Forward(x); err != nil { // updates the running statistics
		t.Fatal(err)
	}
	dst, err := model.New(tinyConfig(), tensor.Float32, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.LoadState(src.State()); err != nil {
		t.Fatal(err)
	}
	src.SetTraining(false)
	dst.SetTraining(false)
	a, err := src.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dst.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	av, bv := a.Output.Float32s(), b.Output.Float32s()
	for i := range av {
		if av[i] != bv[i] {
			t.Fatalf("output %d: %g vs %g", i, av[i], bv[i])
		}
	}
	counters := 0
	for name, st := range dst.State() {
		if strings.HasSuffix(name, "."+model.NumBatchesTracked) {
			counters++
			if st.I64[0] != 1 {
				t.Errorf("%s = %d, want 1", name, st.I64[0])
			}
		}
	}
	if want := len(dst.BufferInfos()) / 3; counters != want {
		t.Errorf("%d num_batches_tracked counters, want %d", counters, want)
	}
}

func TestForwardShapes(t *testing.T) {
	tests := []struct {
		name string
		cfg  model.Config
		x    []int
	}{
		{"cifar", tinyConfig(), []int{2, 3, 8, 8}},
		{"imagenet stem", model.Config{Stem: "imagenet", Widths: []int{4, 4, 8, 8}, Blocks: []int{1, 1, 1, 1}, FeatDim: 5, Head: "linear"}, []int{2, 3, 33, 31}},
		{"bottleneck gray", model.Config{Arch: "resnet50", InChannels: 1, Widths: []int{2, 2, 2, 2}, Blocks: []int{1, 2, 1, 1}, FeatDim: 3}, []int{3, 1, 9, 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := model.New(tc.cfg, tensor.Float64, 1)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Forward(randBatch(tensor.Float64, tc.x...))
			if err != nil {
				t.Fatal(err)
			}
			cfg := m.Config()
			if s := out.Encoder.Shape(); !s.Eq(tensor.Shape{tc.x[0], m.EncoderDim()}) {
				t.Errorf("encoder shape %v", s)
			}
			if s := out.Output.Shape(); !s.Eq(tensor.Shape{tc.x[0], cfg.FeatDim}) {
				t.Errorf("output shape %v", s)
			}
			v := out.Output.Float64s()
			for r := 0; r < tc.x[0]; r++ {
				var ss float64
				for _, x := range v[r*cfg.FeatDim : (r+1)*cfg.FeatDim] {
					ss += x * x
				}
				if math.Abs(ss-1) > 1e-12 {
					t.Errorf("row %d has squared norm %g", r, ss)
				}
			}
		})
	}
}

func TestForwardErrors(t *testing.T) {
	m, err := model.New(tinyConfig(), tensor.Float64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		x    *tensor.Dense
	}{
		{"nil", nil},
		{"channels", randBatch(tensor.Float64, 2, 1, 8, 8)},
		{"rank", randBatch(tensor.Float64, 2, 3, 8)},
		{"dtype", randBatch(tensor.Float32, 2, 3, 8, 8)},
		{"too small for training BN", randBatch(tensor.Float64, 1, 3, 1, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Forward(tc.x); err == nil {
				t.Errorf("Forward succeeded")
			}
		})
	}
	if _, err := m.Build(0, 8, 8); !errors.Is(err, model.ErrInput) {
		t.Errorf("Build(0, 8, 8) error %v, want ErrInput", err)
	}
}
