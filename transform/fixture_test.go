package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/safetensors"
)

// fixture is augment.json plus the tensors of augment.safetensors.
type fixture struct {
	Inputs []struct {
		Name   string `json:"name"`
		Tensor string `json:"tensor"`
	} `json:"inputs"`
	Cases    []fixtureCase `json:"cases"`
	PILCases []fixtureCase `json:"pil_reference_cases"`

	tensors *safetensors.File
	pixels  map[string]Pixels
}

type fixtureCase struct {
	ID     string          `json:"id"`
	Input  string          `json:"input"`
	Op     string          `json:"op"`
	Params json.RawMessage `json:"params"`
	Output string          `json:"output"`
	Shape  []int           `json:"output_shape"`
}

// step holds the parameters of any op; each op reads its own fields.
type step struct {
	Op                       string            `json:"op"`
	Top, Left, Height, Width int               `json:"-"`
	Size                     []int             `json:"size"`
	Antialias                *bool             `json:"antialias"`
	Factor                   float32           `json:"factor"`
	FnIdx                    []uint8           `json:"fn_idx"`
	Brightness               float32           `json:"brightness_factor"`
	Contrast                 float32           `json:"contrast_factor"`
	Saturation               float32           `json:"saturation_factor"`
	Hue                      float32           `json:"hue_factor"`
	Mean, Std                []float32         `json:"-"`
	NumOutputChannels        int               `json:"num_output_channels"`
	Steps                    []json.RawMessage `json:"steps"`
}

// UnmarshalJSON fills the fields whose JSON names clash with Go keywords or
// with each other's spelling.
func (s *step) UnmarshalJSON(b []byte) error {
	type plain step
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	var box struct {
		Top, Left, Height, Width int
		Mean, Std                []float32
	}
	if err := json.Unmarshal(b, &box); err != nil {
		return err
	}
	s.Top, s.Left, s.Height, s.Width, s.Mean, s.Std = box.Top, box.Left, box.Height, box.Width, box.Mean, box.Std
	return nil
}

func (s step) box() Box { return Box{Top: s.Top, Left: s.Left, Height: s.Height, Width: s.Width} }

func (s step) jitter() Jitter {
	j := Jitter{Brightness: s.Brightness, Contrast: s.Contrast, Saturation: s.Saturation, Hue: s.Hue}
	copy(j.Order[:], s.FnIdx)
	return j
}

// loadFixture reads the augment fixture folder dir.
func loadFixture(t testing.TB, dir string) *fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "augment.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pixels: map[string]Pixels{}}
	if err := json.Unmarshal(b, f); err != nil {
		t.Fatalf("augment.json: %v", err)
	}
	if f.tensors, err = safetensors.ReadFile(filepath.Join(dir, "augment.safetensors")); err != nil {
		t.Fatal(err)
	}
	for _, in := range f.Inputs {
		v, shape, err := f.tensors.Float64s(in.Tensor)
		if err != nil {
			t.Fatal(err)
		}
		f.pixels[in.Name] = chwToPixels(v, shape)
	}
	return f
}

// chwToPixels converts a [C,H,W] uint8-valued tensor to HWC Pixels.
func chwToPixels(v []float64, shape []int) Pixels {
	c, h, w := shape[0], shape[1], shape[2]
	p := Pixels{H: h, W: w, C: c, Pix: make([]byte, len(v))}
	for ch := 0; ch < c; ch++ {
		for i := 0; i < h*w; i++ {
			p.Pix[i*c+ch] = byte(v[ch*h*w+i])
		}
	}
	return p
}

// run applies one op of the float path to img, (re)loading it from px first
// when the op is the first of a chain.
func run(rs *Resizer, img *Image, px Pixels, s step, first bool) error {
	if first && s.Op != "resized_crop" {
		if err := img.Load(px); err != nil {
			return err
		}
	}
	switch s.Op {
	case "resized_crop":
		if !first {
			return fmt.Errorf("resized_crop must come first")
		}
		return rs.ResizedCrop(img, px, s.box(), s.Size[0], s.Size[1], *s.Antialias)
	case "hflip":
		return HFlip(img)
	case "adjust_brightness":
		return AdjustBrightness(img, s.Factor)
	case "adjust_contrast":
		return AdjustContrast(img, s.Factor)
	case "adjust_saturation":
		return AdjustSaturation(img, s.Factor)
	case "adjust_hue":
		return AdjustHue(img, s.Factor)
	case "rgb_to_grayscale":
		return RGBToGrayscale(img)
	case "color_jitter":
		return ColorJitter(img, s.jitter())
	case "normalize":
		return Normalize(img, s.Mean, s.Std)
	}
	return fmt.Errorf("unknown op %q", s.Op)
}

func maxAbsDiff(got []float32, want []float64) float64 {
	d := 0.0
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-want[i]))
	}
	return d
}

// TestFixtureFloat runs every case of the torchvision fixture on the float32
// path and compares with the float64 reference.
func TestFixtureFloat(t *testing.T) {
	fixtures.ForEach(t, "augment", func(t *testing.T, dir string) {
		f := loadFixture(t, dir)
		if len(f.Cases) != 123 {
			t.Fatalf("fixture has %d cases, want 123", len(f.Cases))
		}
		var rs Resizer
		var img Image
		for _, tc := range f.Cases {
			t.Run(tc.ID, func(t *testing.T) {
				var s step
				if err := json.Unmarshal(tc.Params, &s); err != nil {
					t.Fatal(err)
				}
				s.Op = tc.Op
				steps := []step{s}
				if tc.Op == "pipeline" {
					steps = steps[:0]
					for _, raw := range s.Steps {
						var st step
						if err := json.Unmarshal(raw, &st); err != nil {
							t.Fatal(err)
						}
						steps = append(steps, st)
					}
				}
				px := f.pixels[tc.Input]
				for i, st := range steps {
					if err := run(&rs, &img, px, st, i == 0); err != nil {
						t.Fatalf("step %d (%s): %v", i, st.Op, err)
					}
				}
				want, shape, err := f.tensors.Float64s(tc.Output)
				if err != nil {
					t.Fatal(err)
				}
				if got := []int{img.C, img.H, img.W}; fmt.Sprint(got) != fmt.Sprint(shape) {
					t.Fatalf("shape %v, want %v", got, shape)
				}
				if d := maxAbsDiff(img.Pix, want); d > 1e-5 {
					t.Errorf("max abs diff %.3g, want <= 1e-5", d)
				}
			})
		}
	})
}

// TestFixturePipelineBytes runs the pipeline cases through the production
// path (Augmenter.Apply, uint8 in and out) and checks each pixel against the
// reference, before normalisation, within 1/255.
func TestFixturePipelineBytes(t *testing.T) {
	fixtures.ForEach(t, "augment", func(t *testing.T, dir string) {
		f := loadFixture(t, dir)
		n := 0
		for _, tc := range f.Cases {
			if tc.Op != "pipeline" {
				continue
			}
			n++
			t.Run(tc.ID, func(t *testing.T) {
				var s struct{ Steps []step }
				if err := json.Unmarshal(tc.Params, &s); err != nil {
					t.Fatal(err)
				}
				var p Params
				var mean, std []float32
				size, antialias := 0, true
				for _, st := range s.Steps {
					switch st.Op {
					case "resized_crop":
						p.Box, size, antialias = st.box(), st.Size[0], *st.Antialias
					case "hflip":
						p.Flip = true
					case "color_jitter":
						p.Jittered, p.Jitter = true, st.jitter()
					case "rgb_to_grayscale":
						p.Gray = true
					case "normalize":
						mean, std = st.Mean, st.Std
					}
				}
				a, err := New(Config{Size: size, Antialias: &antialias})
				if err != nil {
					t.Fatal(err)
				}
				px := f.pixels[tc.Input]
				got, err := a.Apply(nil, px, p)
				if err != nil {
					t.Fatal(err)
				}
				want, shape, err := f.tensors.Float64s(tc.Output)
				if err != nil {
					t.Fatal(err)
				}
				c, h, w := shape[0], shape[1], shape[2]
				if len(got) != c*h*w {
					t.Fatalf("view has %d bytes, want %d", len(got), c*h*w)
				}
				worst := 0.0
				for ch := 0; ch < c; ch++ {
					for i := 0; i < h*w; i++ {
						ref := want[ch*h*w+i]*float64(std[ch]) + float64(mean[ch])
						worst = max(worst, math.Abs(float64(got[i*c+ch])/255-ref))
					}
				}
				if worst > 1.0/255 {
					t.Errorf("max abs diff %.3g x 1/255, want <= 1", worst*255)
				}
			})
		}
		if n != 4 {
			t.Fatalf("fixture has %d pipeline cases, want 4", n)
		}
	})
}

// TestFixturePIL checks the antialiased resize, rounded to uint8, against
// Pillow's fixed-point resampler (what SupContrast runs): at most 1 apart.
func TestFixturePIL(t *testing.T) {
	fixtures.ForEach(t, "augment", func(t *testing.T, dir string) {
		f := loadFixture(t, dir)
		var rs Resizer
		var img Image
		for _, tc := range f.PILCases {
			t.Run(tc.ID, func(t *testing.T) {
				var s step
				if err := json.Unmarshal(tc.Params, &s); err != nil {
					t.Fatal(err)
				}
				if err := rs.ResizedCrop(&img, f.pixels[tc.Input], s.box(), s.Size[0], s.Size[1], true); err != nil {
					t.Fatal(err)
				}
				got, err := img.AppendBytes(nil)
				if err != nil {
					t.Fatal(err)
				}
				v, shape, err := f.tensors.Float64s(tc.Output)
				if err != nil {
					t.Fatal(err)
				}
				want := chwToPixels(v, shape)
				for i := range got {
					if d := int(got[i]) - int(want.Pix[i]); d < -1 || d > 1 {
						t.Fatalf("byte %d = %d, Pillow %d", i, got[i], want.Pix[i])
					}
				}
			})
		}
	})
}
