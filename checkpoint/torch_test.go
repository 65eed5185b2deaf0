package checkpoint

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/torchref"
	"github.com/supflow/supflow/safetensors"
	"github.com/supflow/supflow/statedict"
)

// fixtureState builds a checkpoint from the init/* tensors of a resnet
// fixture (counters as I64, floats as dtype) with the b4_16px gradients
// standing in for momentum buffers.
func fixtureState(t *testing.T, model, dtype string) State {
	t.Helper()
	dir := fixtures.Dir(t, "resnet")
	f, err := safetensors.ReadFile(filepath.Join(dir, model+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, model+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Architecture json.RawMessage  `json:"architecture"`
		Optimizer    json.RawMessage  `json:"optimizer"`
		Parameters   []statedict.Info `json:"parameters"`
		Buffers      []statedict.Info `json:"buffers"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	tensor := func(name string) statedict.Tensor {
		v, shape, err := f.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		if dtype == Float64 {
			return statedict.Tensor{Shape: shape, F64: v}
		}
		f32 := make([]float32, len(v))
		for i, x := range v {
			f32[i] = float32(x)
		}
		return statedict.Tensor{Shape: shape, F32: f32}
	}
	s := State{
		Tensors:  map[string]statedict.Tensor{},
		Momentum: map[string]statedict.Tensor{},
		Meta:     Meta{Step: 2, Epoch: 1, DType: dtype, Model: meta.Architecture, Optimizer: meta.Optimizer, RNG: "1234"},
	}
	for _, p := range meta.Parameters {
		s.Tensors[p.Name] = tensor("init/" + p.Name)
		s.Momentum[p.Name] = tensor("b4_16px/grad/" + p.Name)
	}
	for _, b := range meta.Buffers {
		if !strings.HasSuffix(b.Name, "num_batches_tracked") {
			s.Tensors[b.Name] = tensor("init/" + b.Name)
			continue
		}
		// The fixture stores the counter as F64; PyTorch keeps an int64.
		v, shape, err := f.Float64s("b4_16px/after_forward2/" + b.Name)
		if err != nil {
			t.Fatal(err)
		}
		s.Tensors[b.Name] = statedict.Tensor{Shape: shape, I64: []int64{int64(v[0])}}
	}
	if err := Check(s, append(meta.Parameters, meta.Buffers...)); err != nil {
		t.Fatalf("fixture state does not match its own parameter list: %v", err)
	}
	return s
}

// TestLoadInTorch writes fixture checkpoints and their encoder-only
// exports and has PyTorch load them into SupContrast's SupConResNet (an
// export into its encoder) with load_state_dict(strict=True). It skips
// where python3 with torch is absent, and fails there when CI=true (.ci/run
// installs Debian's python3-torch, so CI always runs it).
func TestLoadInTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PyTorch")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "load_in_torch.py"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		model, dtype, block string
		export              bool
	}{
		{"tiny_basic", Float32, "basic", false},
		{"tiny_bottleneck", Float64, "bottleneck", false},
		{"tiny_basic", Float32, "basic", true},
		{"tiny_bottleneck", Float64, "bottleneck", true},
	}
	states := make([]State, len(cases))
	paths := make([]string, len(cases))
	for i, tc := range cases {
		states[i] = fixtureState(t, tc.model, tc.dtype)
		paths[i] = filepath.Join(t.TempDir(), tc.model+".safetensors")
		if !tc.export {
			if err := WriteFile(paths[i], states[i]); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := ExportEncoder(states[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(paths[i], b, 0o600); err != nil {
			t.Fatal(err)
		}
		// What PyTorch should find: the encoder's tensors under their
		// names in SupConResNet.encoder, and no momentum.
		enc := State{Tensors: map[string]statedict.Tensor{}}
		for name, x := range states[i].Tensors {
			if rest, ok := strings.CutPrefix(name, EncoderPrefix); ok {
				enc.Tensors[rest] = x
			}
		}
		states[i] = enc
	}
	out := torchref.Run(t, script, paths...)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("script printed %d lines for %d checkpoints:\n%s", len(lines), len(cases), out)
	}
	for i, tc := range cases {
		var res struct {
			OK       bool               `json:"ok"`
			Arch     map[string]any     `json:"arch"`
			Tensors  int                `json:"tensors"`
			Momentum int                `json:"momentum"`
			Sums     map[string]float64 `json:"sums"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &res); err != nil {
			t.Fatalf("script output %q: %v", lines[i], err)
		}
		s := states[i]
		if !res.OK || res.Arch["block"] != tc.block || res.Tensors != len(s.Tensors) || res.Momentum != len(s.Momentum) {
			t.Fatalf("%s: unexpected result %s", tc.model, lines[i])
		}
		for name, x := range s.Tensors {
			var sum float64
			for _, v := range x.F32 {
				sum += float64(v)
			}
			for _, v := range x.F64 {
				sum += v
			}
			for _, v := range x.I64 {
				sum += float64(v)
			}
			if got, ok := res.Sums[name]; !ok || math.Abs(got-sum) > 1e-9*math.Max(1, math.Abs(sum)) {
				t.Errorf("%s %s: PyTorch sum %v, Go sum %v", tc.model, name, got, sum)
			}
		}
	}
}
