package transform

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"
)

// testPixels returns an h x w x c image with a deterministic pattern.
func testPixels(h, w, c int) Pixels {
	p := Pixels{H: h, W: w, C: c, Pix: make([]byte, h*w*c)}
	for i := range p.Pix {
		p.Pix[i] = byte(i*7 + i/(w*c)*13)
	}
	return p
}

func mustNew(t testing.TB, cfg Config) *Augmenter {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAppendViews(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		h, w, c int
	}{
		{"cifar rgb", Config{}, 32, 32, 3},
		{"gray", Config{}, 28, 28, 1},
		{"wide rgb to 16, 3 views", Config{Size: 16, NViews: 3}, 24, 40, 3},
		{"tall, no antialias", Config{Antialias: ptr(false)}, 50, 9, 3},
		{"one pixel", Config{Size: 8}, 1, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustNew(t, tt.cfg)
			cfg := a.Config()
			prefix := []byte("keep")
			out, err := a.AppendViews(prefix, testPixels(tt.h, tt.w, tt.c), Key{Seed: 1, Epoch: 2, SampleID: 3})
			if err != nil {
				t.Fatal(err)
			}
			if want := len(prefix) + cfg.NViews*cfg.Size*cfg.Size*tt.c; len(out) != want {
				t.Fatalf("len = %d, want %d", len(out), want)
			}
			if string(out[:4]) != "keep" {
				t.Errorf("prefix overwritten")
			}
		})
	}
}

// TestDeterminism checks that a view depends only on (seed, epoch, sample,
// view): two Augmenters, samples visited in different orders and by
// concurrent workers, give the same bytes.
func TestDeterminism(t *testing.T) {
	cfg := Config{NViews: 3}
	imgs := []Pixels{testPixels(32, 32, 3), testPixels(40, 24, 3), testPixels(28, 28, 1), testPixels(60, 90, 3)}
	key := func(i int) Key { return Key{Seed: 42, Epoch: 7, SampleID: uint64(i)} }

	ref := make([][]byte, len(imgs))
	a := mustNew(t, cfg)
	for i, im := range imgs {
		var err error
		if ref[i], err = a.AppendViews(nil, im, key(i)); err != nil {
			t.Fatal(err)
		}
	}

	b := mustNew(t, cfg)
	for i := len(imgs) - 1; i >= 0; i-- {
		got, err := b.AppendViews(nil, imgs[i], key(i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, ref[i]) {
			t.Errorf("sample %d: reverse order differs", i)
		}
	}

	var wg sync.WaitGroup
	got := make([][]byte, len(imgs))
	for i := range imgs {
		wg.Go(func() {
			w, err := New(cfg)
			if err != nil {
				t.Error(err)
				return
			}
			got[i], _ = w.AppendViews(nil, imgs[i], key(i))
		})
	}
	wg.Wait()
	for i := range imgs {
		if !bytes.Equal(got[i], ref[i]) {
			t.Errorf("sample %d: concurrent worker differs", i)
		}
	}

	view := func(k Key, v int) Params { return a.DrawParams(k, v, 1000, 1000) }
	base := Key{Seed: 42, Epoch: 7, SampleID: 3}
	for name, p := range map[string]Params{
		"seed":   view(Key{Seed: 43, Epoch: 7, SampleID: 3}, 0),
		"epoch":  view(Key{Seed: 42, Epoch: 8, SampleID: 3}, 0),
		"sample": view(Key{Seed: 42, Epoch: 7, SampleID: 4}, 0),
		"view":   view(base, 1),
	} {
		if p == view(base, 0) {
			t.Errorf("changing the %s does not change the draw", name)
		}
	}
}

// TestDrawParams checks the distribution of the draws over many keys.
func TestDrawParams(t *testing.T) {
	a := mustNew(t, Config{})
	const n = 4000
	const h, w = 48, 64
	var flips, jitters, grays int
	perms := map[[4]uint8]int{}
	for i := range n {
		p := a.DrawParams(Key{Seed: 9, SampleID: uint64(i)}, 0, h, w)
		b := p.Box
		if err := b.within(h, w); err != nil {
			t.Fatal(err)
		}
		// Rounding each side moves the area fraction by less than
		// (w+h)/2 pixels.
		frac := float64(b.Height*b.Width) / (h * w)
		slack := float64(b.Height+b.Width) / 2 / (h * w)
		if frac < 0.2-slack || frac > 1+slack {
			t.Fatalf("box %+v covers %.3f of the image", b, frac)
		}
		if r := float64(b.Width) / float64(b.Height); r < 0.75*0.9 || r > 4.0/3/0.9 {
			t.Fatalf("box %+v has ratio %.3f", b, r)
		}
		if p.Flip {
			flips++
		}
		if p.Gray {
			grays++
		}
		if p.Jittered {
			jitters++
			j := p.Jitter
			if err := j.Validate(); err != nil {
				t.Fatal(err)
			}
			for _, f := range []float32{j.Brightness, j.Contrast, j.Saturation} {
				if f < 0.6 || f > 1.4 {
					t.Fatalf("factor %v outside [0.6, 1.4]", f)
				}
			}
			if j.Hue < -0.1 || j.Hue > 0.1 {
				t.Fatalf("hue %v outside [-0.1, 0.1]", j.Hue)
			}
			perms[j.Order]++
		}
	}
	for name, c := range map[string]struct {
		got  int
		want float64
	}{"flip": {flips, 0.5}, "jitter": {jitters, 0.8}, "gray": {grays, 0.2}} {
		if f := float64(c.got) / n; math.Abs(f-c.want) > 0.03 {
			t.Errorf("%s rate %.3f, want %.2f", name, f, c.want)
		}
	}
	if len(perms) != 24 {
		t.Errorf("%d distinct jitter orders, want 24", len(perms))
	}

	off := mustNew(t, Config{FlipP: ptr(0.0), JitterP: ptr(0.0), GrayP: ptr(0.0)})
	for i := range 200 {
		if p := off.DrawParams(Key{SampleID: uint64(i)}, 0, h, w); p.Flip || p.Jittered || p.Gray {
			t.Fatalf("probabilities 0 drew %+v", p)
		}
	}
}

// TestCropFallback covers the central crop taken when ten tries fail.
func TestCropFallback(t *testing.T) {
	tests := []struct {
		name         string
		h, w         int
		scale, ratio [2]float64
		want         Box
	}{
		// img_c of the fixture: a full-area crop never fits a 5:3 image.
		{"wide", 24, 40, [2]float64{1, 1}, [2]float64{0.75, 4.0 / 3}, Box{0, 4, 24, 32}},
		{"tall", 40, 24, [2]float64{1, 1}, [2]float64{0.75, 4.0 / 3}, Box{4, 0, 32, 24}},
		{"square to 2:1", 10, 10, [2]float64{1, 1}, [2]float64{2, 2}, Box{2, 0, 5, 10}},
		{"needle", 1, 100, [2]float64{1, 1}, [2]float64{0.75, 4.0 / 3}, Box{0, 49, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRNG(Key{}, 0)
			if got := cropBox(&r, tt.h, tt.w, tt.scale, tt.ratio); got != tt.want {
				t.Errorf("box %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	a := mustNew(t, Config{})
	good := testPixels(8, 8, 3)
	var rs Resizer
	var img Image
	tests := []struct {
		name string
		err  error
		call func() error
	}{
		{"no pixels", ErrImage, func() error { _, err := a.AppendViews(nil, Pixels{H: 8, W: 8, C: 3}, Key{}); return err }},
		{"short pixels", ErrImage, func() error {
			_, err := a.AppendViews(nil, Pixels{H: 8, W: 8, C: 3, Pix: good.Pix[:10]}, Key{})
			return err
		}},
		{"zero height", ErrImage, func() error { _, err := a.AppendViews(nil, Pixels{W: 8, C: 3}, Key{}); return err }},
		{"huge sides", ErrImage, func() error { _, err := a.AppendViews(nil, Pixels{H: 1 << 40, W: 1 << 40, C: 3}, Key{}); return err }},
		{"4 channels", ErrImage, func() error {
			_, err := a.AppendViews(nil, Pixels{H: 2, W: 2, C: 4, Pix: make([]byte, 16)}, Key{})
			return err
		}},
		{"load bad", ErrImage, func() error { return img.Load(Pixels{H: 2, W: 2, C: 2, Pix: make([]byte, 8)}) }},
		{"box outside", ErrParam, func() error { _, err := a.Apply(nil, good, Params{Box: Box{Top: 4, Height: 5, Width: 8}}); return err }},
		{"empty box", ErrParam, func() error { return rs.ResizedCrop(&img, good, Box{}, 4, 4, true) }},
		{"zero output size", ErrParam, func() error { return rs.ResizedCrop(&img, good, Box{Height: 8, Width: 8}, 0, 4, true) }},
		{"bad jitter order", ErrParam, func() error {
			_, err := a.Apply(nil, good, Params{Box: Box{Height: 8, Width: 8}, Jittered: true, Jitter: Jitter{Order: [4]uint8{0, 0, 1, 2}}})
			return err
		}},
		{"hue out of range", ErrParam, func() error { return AdjustHue(&img, 0.6) }},
		{"negative brightness", ErrParam, func() error { return AdjustBrightness(&img, -1) }},
		{"negative contrast", ErrParam, func() error { return AdjustContrast(&img, -1) }},
		{"negative saturation", ErrParam, func() error { return AdjustSaturation(&img, -1) }},
		{"flip short image", ErrImage, func() error { return HFlip(&Image{C: 3, H: 4, W: 4, Pix: make([]float32, 47)}) }},
		{"gray 2 channels", ErrImage, func() error { return RGBToGrayscale(&Image{C: 2, H: 1, W: 1, Pix: make([]float32, 2)}) }},
		{"hue empty image", ErrImage, func() error { return AdjustHue(&Image{C: 3}, 0.1) }},
		{"jitter short image", ErrImage, func() error {
			return ColorJitter(&Image{C: 3, H: 2, W: 2, Pix: make([]float32, 3)}, Jitter{Order: [4]uint8{0, 1, 2, 3}, Brightness: 2})
		}},
		{"normalize short image", ErrImage, func() error { return Normalize(&Image{C: 1, H: 2, W: 2}, []float32{0}, []float32{1}) }},
		{"bytes of short image", ErrImage, func() error { _, err := (&Image{C: 1, H: 2, W: 2}).AppendBytes(nil); return err }},
		{"normalize channels", ErrParam, func() error {
			_ = img.Load(good)
			return Normalize(&img, []float32{0.5}, []float32{0.5})
		}},
		{"normalize zero std", ErrParam, func() error {
			_ = img.Load(good)
			return Normalize(&img, []float32{0, 0, 0}, []float32{1, 0, 1})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

// TestViewsAllocFree checks that steady-state views reuse the Augmenter's
// scratch: no allocation when the destination has room.
func TestViewsAllocFree(t *testing.T) {
	a := mustNew(t, Config{})
	src := testPixels(64, 48, 3)
	dst := make([]byte, 0, 2*32*32*3)
	k := Key{Seed: 1}
	allocs := testing.AllocsPerRun(50, func() {
		k.SampleID++
		if _, err := a.AppendViews(dst[:0], src, k); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call, want 0", allocs)
	}
}

// FuzzResizedCrop feeds arbitrary shapes, boxes and sizes: the ops must
// answer with a view or an error, never panic.
func FuzzResizedCrop(f *testing.F) {
	f.Add(8, 8, 3, 0, 0, 8, 8, 4, true)
	f.Add(1, 1, 1, 0, 0, 1, 1, 32, false)
	f.Add(5, 3, 3, -1, 2, 9, 0, 0, true)
	f.Add(300, 2, 1, 10, 0, 290, 2, 7, true)
	f.Fuzz(func(t *testing.T, h, w, c, top, left, bh, bw, size int, aa bool) {
		if h*w*c > 1<<20 || h*w*c < 0 || size > 512 {
			t.Skip()
		}
		var src Pixels
		if h > 0 && w > 0 && c > 0 {
			src = testPixels(h, w, c)
		}
		src.H, src.W, src.C = h, w, c
		var rs Resizer
		var img Image
		err := rs.ResizedCrop(&img, src, Box{top, left, bh, bw}, size, size, aa)
		if err != nil {
			return
		}
		for _, v := range img.Pix {
			if !(v >= -1e-6 && v <= 1+1e-6) {
				t.Fatalf("value %v outside [0,1]", v)
			}
		}
	})
}
