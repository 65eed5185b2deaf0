package dataset

import (
	"bytes"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
	"testing/fstest"
)

// FuzzDecodeFile feeds any bytes to the ImageFolder file reader under
// small limits: it never panics, every failure is a bad file (ErrSource,
// skipped by Samples) or a refusal (ErrRefused), a file over the size limit is refused whatever it holds,
// and an image it returns is within the pixel limit.
func FuzzDecodeFile(f *testing.F) {
	img := image.NewGray(image.Rect(0, 0, 8, 6))
	for _, enc := range []func(*bytes.Buffer) error{
		func(b *bytes.Buffer) error { return png.Encode(b, img) },
		func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) },
		func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) },
	} {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Add(gifHeader(60000, 60000))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add(make([]byte, 5000))
	const maxPixels, maxBytes = 4096, 4096
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := fstest.MapFS{"x.png": {Data: b}}
		m, refused, err := decodeFile(fsys, "x.png", 3, ReadOptions{MaxPixels: maxPixels, MaxFileBytes: maxBytes})
		var bad *badFile
		switch {
		case err != nil:
			if !errors.Is(err, ErrSource) || !errors.As(err, &bad) || refused != nil || m != nil {
				t.Fatalf("error %v (refused %v, image %v): want a bad file alone", err, refused, m != nil)
			}
		case refused != nil:
			if !errors.Is(refused, ErrRefused) || m != nil {
				t.Fatalf("refused %v with an image %v", refused, m != nil)
			}
		case m == nil:
			t.Fatal("no image, no refusal, no error")
		default:
			if r := m.Bounds(); int64(r.Dx())*int64(r.Dy()) > maxPixels {
				t.Fatalf("%v image returned, limit %d pixels", r, maxPixels)
			}
		}
		if len(b) > maxBytes && refused == nil {
			t.Fatalf("%d-byte file not refused (limit %d): %v", len(b), maxBytes, err)
		}
	})
}
