package safetensors

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/supflow/supflow/internal/fixtures"
)

func TestRoundTrip(t *testing.T) {
	f := New()
	f.Metadata["format"] = "pt"
	f.PutFloat64s("a", []int{2, 3}, []float64{1, 2, 3, 4, 5, 6.5})
	f.PutFloat32s("b.weight", []int{3}, []float32{-1, 0, 1})
	f.PutInt64s("n", []int{}, []int64{7})
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	g, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if g.Metadata["format"] != "pt" {
		t.Errorf("metadata lost: %v", g.Metadata)
	}
	a, shape, _ := g.Float64s("a")
	if len(shape) != 2 || a[5] != 6.5 {
		t.Errorf("a = %v %v", a, shape)
	}
	b, _, _ := g.Float32s("b.weight")
	if b[0] != -1 || b[2] != 1 {
		t.Errorf("b = %v", b)
	}
	n, shape, _ := g.Float64s("n")
	if len(shape) != 0 || n[0] != 7 {
		t.Errorf("n = %v %v", n, shape)
	}
}

func TestFixturesParse(t *testing.T) {
	for _, rel := range []string{"resnet/tiny_basic.safetensors", "resnet/tiny_bottleneck.safetensors", "augment/augment.safetensors"} {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			fixtures.ForEach(t, filepath.Dir(rel), func(t *testing.T, dir string) {
				f, err := ReadFile(filepath.Join(dir, filepath.Base(rel)))
				if err != nil {
					t.Fatal(err)
				}
				if len(f.Tensors) == 0 {
					t.Errorf("%s: no tensors", rel)
				}
			})
		})
	}
}

func TestMalformed(t *testing.T) {
	good, err := func() ([]byte, error) {
		f := New()
		f.PutFloat64s("a", []int{2}, []float64{1, 2})
		return f.Bytes()
	}()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":       nil,
		"short":       good[:5],
		"huge header": append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, good[8:]...),
		"truncated":   good[:len(good)-3],
		"bad json":    append(append([]byte{}, good[:8]...), bytes.Repeat([]byte{'{'}, len(good)-8)...),
	}
	for name, b := range cases {
		if _, err := Parse(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	g := New()
	g.PutFloat32s("w", []int{2, 2}, []float32{1, 2, 3, 4})
	b, _ := g.Bytes()
	f.Add(b)
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		for _, name := range file.Names() {
			if _, _, err := file.Float64s(name); err != nil {
				t.Fatal(err)
			}
		}
	})
}
