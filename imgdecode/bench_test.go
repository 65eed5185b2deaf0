package imgdecode

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"testing"
)

// BenchmarkDecodePhotos decodes real photographs (Debian package
// plasma-workspace-wallpapers; skipped when it is not installed) on one
// goroutine and reports img/s.
func BenchmarkDecodePhotos(b *testing.B) {
	photos := photographs(b, 40, math.MaxInt)
	if len(photos) == 0 {
		b.Skip("no photographs: apt-get install plasma-workspace-wallpapers")
	}
	for _, bc := range []struct {
		name   string
		cfg    Config
		pureGo bool
	}{
		{name: "full", cfg: Config{}},
		{name: "shorter256", cfg: Config{ResizeShorter: 256}},
		{name: "shorter256_purego", cfg: Config{ResizeShorter: 256}, pureGo: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := mustDecoder(b, bc.cfg)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, err := d.decode(photos[n%len(photos)], !bc.pureGo); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "img/s")
		})
	}
}

// BenchmarkDecodePNG32 decodes 32x32 RGB PNGs, the size of CIFAR images.
func BenchmarkDecodePNG32(b *testing.B) {
	m := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	copy(m.Pix, pattern(32, 32, 4))
	for i := 3; i < len(m.Pix); i += 4 {
		m.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		b.Fatal(err)
	}
	d := mustDecoder(b, Config{})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := d.Decode(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "img/s")
}
