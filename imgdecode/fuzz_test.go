package imgdecode

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes through every output mode. Seeds live in
// testdata/fuzz/FuzzDecode (small valid and broken images of each format).
func FuzzDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add(pngHeader(50000, 50000))
	f.Add(encodePNG(f, photo(5, 4)))
	f.Add(appendExif(encodeJPEG(f, photo(20, 12), 80), 6, binary.BigEndian))
	f.Add(encodeGIF(f, photo(6, 6)))
	decoders := []*Decoder{
		mustDecoder(f, Config{MaxPixels: 1 << 20}),
		mustDecoder(f, Config{MaxPixels: 1 << 20, Gray: true, ResizeShorter: 5}),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range decoders {
			m, err := d.Decode(data)
			if err != nil {
				if !refusal(err) {
					t.Fatalf("error %v wraps none of the package's sentinels", err)
				}
				continue
			}
			if m.Width <= 0 || m.Height <= 0 || len(m.Pix) != m.Width*m.Height*m.Channels {
				t.Fatalf("bad image %dx%dx%d with %d bytes", m.Width, m.Height, m.Channels, len(m.Pix))
			}
		}
	})
}

// refusal reports whether err wraps one of the sentinels Decode promises.
func refusal(err error) bool {
	return errors.Is(err, ErrEmpty) || errors.Is(err, ErrFormat) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt)
}
