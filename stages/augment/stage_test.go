package augment

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/supflow/supflow/config/field/fieldtest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/transform"
)

func image(h, w, c int) messages.Image {
	pix := make([]byte, h*w*c)
	for i := range pix {
		pix[i] = byte(i*31 + i/7)
	}
	return messages.Image{
		RunID: "run1", Epoch: 3, SampleID: 17, Label: 5, Split: "train",
		Height: uint32(h), Width: uint32(w), Channels: uint8(c), Pixels: pix,
	}
}

func mustNew(t testing.TB, cfg Config) *Stage {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name           string
		cfg            Config
		img            messages.Image
		views, size, c int
	}{
		{"cifar defaults", Config{Seed: 1}, image(32, 32, 3), 2, 32, 3},
		{"gray", Config{Seed: 1}, image(28, 28, 1), 2, 32, 1},
		{"photo to 64, 4 views", Config{Seed: 1, Config: transform.Config{Size: 64, NViews: 4}}, image(120, 90, 3), 4, 64, 3},
		{"one pixel upsampled", Config{Config: transform.Config{Size: 8}}, image(1, 1, 3), 2, 8, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vg, err := mustNew(t, tt.cfg).Handle(context.Background(), tt.img)
			if err != nil {
				t.Fatal(err)
			}
			in := tt.img
			if vg.RunID != in.RunID || vg.Epoch != in.Epoch || vg.SampleID != in.SampleID || vg.Label != in.Label || vg.Split != in.Split {
				t.Errorf("identity not carried over: %+v", vg)
			}
			if int(vg.NViews) != tt.views || int(vg.Height) != tt.size || int(vg.Width) != tt.size || int(vg.Channels) != tt.c {
				t.Errorf("shape %d x %dx%dx%d, want %d x %dx%dx%d", vg.NViews, vg.Height, vg.Width, vg.Channels, tt.views, tt.size, tt.size, tt.c)
			}
			if want := tt.views * tt.size * tt.size * tt.c; len(vg.Pixels) != want {
				t.Fatalf("%d pixel bytes, want %d", len(vg.Pixels), want)
			}
			// Views are drawn independently, so two views of a textured
			// image are (almost surely) different.
			per := len(vg.Pixels) / tt.views
			if tt.img.Height > 1 && bytes.Equal(vg.Pixels[:per], vg.Pixels[per:2*per]) {
				t.Errorf("views 0 and 1 are identical")
			}
		})
	}
}

// TestDeterminism: two Stage instances (two workers) and concurrent calls
// on one Stage give the same views; another seed or epoch does not.
func TestDeterminism(t *testing.T) {
	cfg := Config{Seed: 99}
	imgs := make([]messages.Image, 8)
	for i := range imgs {
		imgs[i] = image(20+i, 30-i, 3)
		imgs[i].SampleID = uint64(i)
	}
	ctx := context.Background()
	first, second := mustNew(t, cfg), mustNew(t, cfg)
	ref := make([][]byte, len(imgs))
	for i, img := range imgs {
		vg, err := first.Handle(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		ref[i] = vg.Pixels
	}

	var wg sync.WaitGroup
	got := make([][]byte, len(imgs))
	for i := len(imgs) - 1; i >= 0; i-- {
		wg.Go(func() {
			vg, err := second.Handle(ctx, imgs[i])
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = vg.Pixels
		})
	}
	wg.Wait()
	for i := range imgs {
		if !bytes.Equal(got[i], ref[i]) {
			t.Errorf("sample %d: views differ between stages", i)
		}
	}

	other := mustNew(t, Config{Seed: 100})
	vg, err := other.Handle(ctx, imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(vg.Pixels, ref[0]) {
		t.Errorf("another seed gives the same views")
	}
	next := imgs[0]
	next.Epoch++
	if vg, err = first.Handle(ctx, next); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(vg.Pixels, ref[0]) {
		t.Errorf("another epoch gives the same views")
	}
}

func TestHandleBadInput(t *testing.T) {
	s := mustNew(t, Config{})
	tests := []struct {
		name string
		edit func(*messages.Image)
	}{
		{"short pixels", func(m *messages.Image) { m.Pixels = m.Pixels[:len(m.Pixels)-1] }},
		{"no pixels", func(m *messages.Image) { m.Pixels = nil }},
		{"zero height", func(m *messages.Image) { m.Height = 0 }},
		{"zero width", func(m *messages.Image) { m.Width = 0 }},
		{"2 channels", func(m *messages.Image) { m.Channels = 2 }},
		{"4 channels", func(m *messages.Image) { m.Channels = 4 }},
		{"huge", func(m *messages.Image) { m.Height, m.Width = 1<<31, 1<<31 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := image(8, 8, 3)
			tt.edit(&img)
			_, err := s.Handle(context.Background(), img)
			if !errors.Is(err, messages.ErrPermanent) || !errors.Is(err, transform.ErrImage) {
				t.Errorf("err = %v, want permanent ErrImage", err)
			}
		})
	}
}

func TestHandleCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := mustNew(t, Config{}).Handle(ctx, image(8, 8, 3))
	if !errors.Is(err, context.Canceled) || errors.Is(err, messages.ErrPermanent) {
		t.Errorf("err = %v, want a retryable context.Canceled", err)
	}
}

func TestNewBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Config: transform.Config{NViews: 1}},
		{Config: transform.Config{NViews: messages.MaxViews + 1}},
		{Config: transform.Config{Size: -3}},
		{Config: transform.Config{Scale: [2]float64{0.5, 2}}},
		{Workers: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, transform.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

// TestValidate: each bad value is named by its key in pipeline.yaml's
// augment section.
func TestValidate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		edit func(*Config)
		key  string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"max views", func(c *Config) { c.NViews = messages.MaxViews }, ""},
		{"nil pointer is the default", func(c *Config) { c.FlipP = nil }, ""},
		{"no workers", func(c *Config) { c.Workers = 0 }, "workers"},
		{"too many workers", func(c *Config) { c.Workers = maxWorkers + 1 }, "workers"},
		{"size 0 is not defaulted", func(c *Config) { c.Size = 0 }, "size"},
		{"size 3", func(c *Config) { c.Size = 3 }, "size"},
		{"size 1025", func(c *Config) { c.Size = 1025 }, "size"},
		{"one view", func(c *Config) { c.NViews = 1 }, "n_views"},
		{"more views than a message carries", func(c *Config) { c.NViews = messages.MaxViews + 1 }, "n_views"},
		{"scale", func(c *Config) { c.Scale = [2]float64{0.9, 0.2} }, "scale"},
		{"ratio", func(c *Config) { c.Ratio = [2]float64{0, 1} }, "ratio"},
		{"flip_p", func(c *Config) { c.FlipP = f(2) }, "flip_p"},
		{"jitter_p", func(c *Config) { c.JitterP = f(-1) }, "jitter_p"},
		{"grayscale_p", func(c *Config) { c.GrayP = f(1.5) }, "grayscale_p"},
		{"brightness", func(c *Config) { c.Jitter.Brightness = -1 }, "brightness"},
		{"contrast", func(c *Config) { c.Jitter.Contrast = -1 }, "contrast"},
		{"saturation", func(c *Config) { c.Jitter.Saturation = -1 }, "saturation"},
		{"hue", func(c *Config) { c.Jitter.Hue = 0.6 }, "hue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			if err := fieldtest.Check(c.Validate(), tt.key, transform.ErrConfig); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Workers != 2 || c.Seed != 0 || c.Size != 32 || c.NViews != 2 || *c.FlipP != 0.5 || *c.GrayP != 0.2 {
		t.Errorf("DefaultConfig = %+v", c)
	}
}

// BenchmarkHandle measures the stage on CIFAR-size images, pool included.
func BenchmarkHandle(b *testing.B) {
	s := mustNew(b, Config{Seed: 1})
	img := image(32, 32, 3)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		img.SampleID++
		if _, err := s.Handle(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}
