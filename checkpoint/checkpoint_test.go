package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/safetensors"
	"github.com/supflow/supflow/statedict"
)

// sampleState is a tiny model: a conv weight, a BN layer with its buffers
// and a linear head, with momentum for the parameters.
func sampleState(dtype string) State {
	f := func(shape []int, v ...float64) statedict.Tensor {
		if dtype == Float32 {
			f32 := make([]float32, len(v))
			for i, x := range v {
				f32[i] = float32(x)
			}
			return statedict.Tensor{Shape: shape, F32: f32}
		}
		return statedict.Tensor{Shape: shape, F64: v}
	}
	return State{
		Tensors: map[string]statedict.Tensor{
			"encoder.conv1.weight":            f([]int{2, 1, 1, 1}, 0.5, -0.25),
			"encoder.bn1.weight":              f([]int{2}, 1, 1),
			"encoder.bn1.bias":                f([]int{2}, 0, 0.125),
			"encoder.bn1.running_mean":        f([]int{2}, 0.1, 0.2),
			"encoder.bn1.running_var":         f([]int{2}, 0.9, 1.1),
			"encoder.bn1.num_batches_tracked": {Shape: []int{}, I64: []int64{1 << 60}},
			"head.0.weight":                   f([]int{1, 2}, 3, 4),
			"head.0.bias":                     f([]int{1}, -1),
		},
		Momentum: map[string]statedict.Tensor{
			"encoder.conv1.weight": f([]int{2, 1, 1, 1}, 0.01, 0.02),
			"head.0.weight":        f([]int{1, 2}, -0.5, 0.5),
		},
		Meta: Meta{
			Step:      1234,
			Epoch:     7,
			DType:     dtype,
			Model:     json.RawMessage(`{"block":"basic","widths":[8,16,32,64]}`),
			Optimizer: json.RawMessage(`{"momentum":0.9}`),
			RNG:       "seed=42;epoch=7",
			Extra:     map[string]string{"git_commit": "abc123"},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, dtype := range []string{Float32, Float64} {
		t.Run(dtype, func(t *testing.T) {
			want := sampleState(dtype)
			path := filepath.Join(t.TempDir(), "ckpt.safetensors")
			if err := WriteFile(path, want); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the state:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestLayout checks the file as a plain safetensors reader (or PyTorch)
// sees it.
func TestLayout(t *testing.T) {
	b, err := Encode(sampleState(Float32))
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	wantDType := map[string]safetensors.DType{
		"encoder.conv1.weight":                    safetensors.F32,
		"encoder.bn1.num_batches_tracked":         safetensors.I64,
		"optimizer.momentum.encoder.conv1.weight": safetensors.F32,
		"optimizer.momentum.head.0.weight":        safetensors.F32,
	}
	for name, dt := range wantDType {
		if got := f.Tensors[name].DType; got != dt {
			t.Errorf("%s: dtype %q, want %q", name, got, dt)
		}
	}
	if len(f.Tensors) != 10 {
		t.Errorf("%d tensors, want 10: %v", len(f.Tensors), f.Names())
	}
	wantMeta := map[string]string{
		"format":                 "pt",
		"supflow.format_version": "1",
		"supflow.step":           "1234",
		"supflow.epoch":          "7",
		"supflow.dtype":          "float32",
		"supflow.rng":            "seed=42;epoch=7",
		"git_commit":             "abc123",
	}
	for k, v := range wantMeta {
		if f.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, f.Metadata[k], v)
		}
	}
}

func TestEncodeInvalid(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*State)
	}{
		{"no dtype", func(s *State) { s.Meta.DType = "" }},
		{"unknown dtype", func(s *State) { s.Meta.DType = "bfloat16" }},
		{"float tensor of the other dtype", func(s *State) { s.Tensors["x"] = statedict.Tensor{Shape: []int{1}, F64: []float64{1}} }},
		{"no data", func(s *State) { s.Tensors["x"] = statedict.Tensor{Shape: []int{1}} }},
		{"two data slices", func(s *State) { s.Tensors["x"] = statedict.Tensor{Shape: []int{1}, F32: []float32{1}, I64: []int64{1}} }},
		{"short data", func(s *State) { s.Tensors["x"] = statedict.Tensor{Shape: []int{3}, F32: []float32{1}} }},
		{"negative dim", func(s *State) { s.Tensors["x"] = statedict.Tensor{Shape: []int{-1}, F32: []float32{}} }},
		{"reserved name", func(s *State) { s.Tensors["optimizer.lr"] = statedict.Tensor{Shape: []int{}, F32: []float32{1}} }},
		{"metadata name", func(s *State) { s.Tensors["__metadata__"] = statedict.Tensor{Shape: []int{}, F32: []float32{1}} }},
		{"empty name", func(s *State) { s.Tensors[""] = statedict.Tensor{Shape: []int{}, F32: []float32{1}} }},
		{"no tensors", func(s *State) { s.Tensors = nil; s.Momentum = nil }},
		{"momentum of unknown tensor", func(s *State) { s.Momentum["nope"] = statedict.Tensor{Shape: []int{1}, F32: []float32{1}} }},
		{"momentum shape", func(s *State) { s.Momentum["head.0.bias"] = statedict.Tensor{Shape: []int{1, 1}, F32: []float32{1}} }},
		{"momentum of a counter", func(s *State) {
			s.Momentum["encoder.bn1.num_batches_tracked"] = statedict.Tensor{Shape: []int{}, I64: []int64{1}}
		}},
		{"negative step", func(s *State) { s.Meta.Step = -1 }},
		{"negative epoch", func(s *State) { s.Meta.Epoch = -1 }},
		{"model config not JSON", func(s *State) { s.Meta.Model = json.RawMessage("{") }},
		{"optimizer config not JSON", func(s *State) { s.Meta.Optimizer = json.RawMessage("momentum=0.9") }},
		{"reserved extra key", func(s *State) { s.Meta.Extra["supflow.step"] = "9" }},
		{"format extra key", func(s *State) { s.Meta.Extra["format"] = "tf" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sampleState(Float32)
			tt.modify(&s)
			if _, err := Encode(s); !errors.Is(err, ErrFormat) {
				t.Errorf("err = %v, want ErrFormat", err)
			}
			if err := WriteFile(filepath.Join(t.TempDir(), "c"), s); !errors.Is(err, ErrFormat) {
				t.Errorf("WriteFile err = %v, want ErrFormat", err)
			}
		})
	}
}

// encodeRaw writes a safetensors file with arbitrary metadata, bypassing
// Encode's checks.
func encodeRaw(t *testing.T, meta map[string]string, put func(*safetensors.File)) []byte {
	t.Helper()
	f := safetensors.New()
	for k, v := range meta {
		f.Metadata[k] = v
	}
	put(f)
	b, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeInvalid(t *testing.T) {
	good := map[string]string{"supflow.format_version": "1", "supflow.step": "1", "supflow.epoch": "1", "supflow.dtype": "float32"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	weight := func(f *safetensors.File) { f.PutFloat32s("w", []int{2}, []float32{1, 2}) }
	fixture, err := os.ReadFile(filepath.Join(fixtures.Dir(t, "resnet"), "tiny_basic.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"garbage", []byte("not a checkpoint at all"), ErrFormat},
		{"plain safetensors", fixture, ErrVersion},
		{"future version", encodeRaw(t, with("supflow.format_version", "2"), weight), ErrVersion},
		{"bad step", encodeRaw(t, with("supflow.step", "x"), weight), ErrFormat},
		{"missing epoch", encodeRaw(t, with("supflow.epoch", ""), weight), ErrFormat},
		{"missing dtype", encodeRaw(t, with("supflow.dtype", ""), weight), ErrFormat},
		{"bad model JSON", encodeRaw(t, with("supflow.model", "{"), weight), ErrFormat},
		{"U8 tensor", encodeRaw(t, good, func(f *safetensors.File) {
			f.Tensors["w"] = safetensors.Tensor{DType: safetensors.U8, Shape: []int{1}, Data: []byte{1}}
		}), ErrFormat},
		{"F64 in float32 checkpoint", encodeRaw(t, good, func(f *safetensors.File) {
			f.PutFloat64s("w", []int{1}, []float64{1})
		}), ErrFormat},
		{"orphan momentum", encodeRaw(t, good, func(f *safetensors.File) {
			weight(f)
			f.PutFloat32s(MomentumPrefix+"v", []int{2}, []float32{1, 2})
		}), ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	s := sampleState(Float64)
	var expected []statedict.Info
	for _, name := range sortedNames(s.Tensors) {
		expected = append(expected, statedict.Info{Name: name, Shape: s.Tensors[name].Shape})
	}
	if err := Check(s, expected); err != nil {
		t.Fatalf("matching state: %v", err)
	}
	replace := func(name string, shape []int) []statedict.Info {
		out := []statedict.Info{}
		for _, e := range expected {
			if e.Name == name {
				e.Shape = shape
			}
			out = append(out, e)
		}
		return out
	}
	tests := []struct {
		name     string
		state    func() State
		expected []statedict.Info
		want     MismatchError
		text     []string
	}{
		{"wrong shape", func() State { return sampleState(Float64) }, replace("head.0.weight", []int{2, 2}),
			MismatchError{Name: "head.0.weight", Want: []int{2, 2}, Got: []int{1, 2}},
			[]string{`"head.0.weight"`, "[1 2]", "[2 2]"}},
		{"missing", func() State { return sampleState(Float64) }, append(expected[:len(expected):len(expected)], statedict.Info{Name: "head.2.weight", Shape: []int{4, 2}}),
			MismatchError{Name: "head.2.weight", Want: []int{4, 2}, Missing: true},
			[]string{`"head.2.weight"`, "missing", "[4 2]"}},
		{"unexpected", func() State {
			s := sampleState(Float64)
			s.Tensors["encoder.fc.weight"] = statedict.Tensor{Shape: []int{3}, F64: []float64{1, 2, 3}}
			return s
		}, expected,
			MismatchError{Name: "encoder.fc.weight", Got: []int{3}, Unexpected: true},
			[]string{`"encoder.fc.weight"`, "not in the model", "[3]"}},
		{"momentum shape", func() State {
			s := sampleState(Float64)
			s.Momentum["head.0.bias"] = statedict.Tensor{Shape: []int{1, 1}, F64: []float64{1}}
			return s
		}, expected,
			MismatchError{Name: "optimizer.momentum.head.0.bias", Want: []int{1}, Got: []int{1, 1}},
			[]string{"optimizer.momentum.head.0.bias", "[1 1]", "[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.state(), tt.expected)
			var me *MismatchError
			if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) {
				t.Fatalf("err = %v, want a *MismatchError", err)
			}
			if !reflect.DeepEqual(*me, tt.want) {
				t.Errorf("mismatch %+v, want %+v", *me, tt.want)
			}
			for _, s := range tt.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %s", err, s)
				}
			}
		})
	}
}

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "latest.safetensors")
	first := sampleState(Float32)
	if err := WriteFile(path, first); err != nil {
		t.Fatal(err)
	}
	second := sampleState(Float32)
	second.Meta.Step = 9999
	if err := WriteFile(path, second); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Meta.Step != 9999 {
		t.Errorf("step %d after overwrite", got.Meta.Step)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the checkpoint (no temporary files)", len(entries))
	}
	// A failed encode must leave the old file intact.
	bad := sampleState(Float32)
	bad.Meta.DType = ""
	if err := WriteFile(path, bad); err == nil {
		t.Fatal("invalid state written")
	}
	if raw, err := os.ReadFile(path); err != nil || !bytes.Contains(raw, []byte(`"9999"`)) {
		t.Errorf("old checkpoint damaged: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir", "c"), first); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	if _, err := ReadFile(filepath.Join(dir, "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

// TestExportEncoder: an export holds the encoder's tensors without their
// prefix, no head and no momentum, keeps dtype, step, epoch and model in
// its metadata, and is refused as a checkpoint.
func TestExportEncoder(t *testing.T) {
	s := fixtureState(t, "tiny_basic", Float32)
	b, err := ExportEncoder(s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for name, x := range s.Tensors {
		rest, ok := strings.CutPrefix(name, EncoderPrefix)
		if !ok {
			continue
		}
		want++
		got, err := f.Get(rest)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Shape, x.Shape) {
			t.Errorf("%s: shape %v, want %v", rest, got.Shape, x.Shape)
		}
	}
	if len(f.Tensors) != want || want == 0 {
		t.Errorf("%d tensors exported, want the %d encoder tensors", len(f.Tensors), want)
	}
	m := f.Metadata
	if m["format"] != "pt" || m[keyExport] != "encoder" || m[keyDType] != Float32 || m[keyEpoch] != "1" || m[keyStep] != "2" || m[keyModel] == "" {
		t.Errorf("metadata %v", m)
	}
	if _, err := Decode(b); !errors.Is(err, ErrVersion) {
		t.Errorf("Decode of an export: %v, want ErrVersion", err)
	}
	for name := range s.Tensors {
		if strings.HasPrefix(name, EncoderPrefix) {
			delete(s.Tensors, name)
			delete(s.Momentum, name)
		}
	}
	if _, err := ExportEncoder(s); !errors.Is(err, ErrFormat) {
		t.Errorf("export without encoder tensors: %v, want ErrFormat", err)
	}
}
