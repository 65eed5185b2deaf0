package imgdecode

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"runtime"
	"testing"
)

// allocated returns the bytes allocated while f ran (runtime.MemStats
// TotalAlloc: an upper bound on the heap growth f caused).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// pngChunk appends one PNG chunk with its CRC.
func pngChunk(out []byte, typ string, data []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	body := append([]byte(typ), data...)
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(body))
}

// pngBomb is a valid w x h 8-bit gray PNG of zeros: about w*h/1000 bytes
// that inflate to w*h. With truncate, only the first 64 bytes of its
// compressed data are kept: a bomb's header in front of a cut stream.
func pngBomb(t testing.TB, w, h int, truncate bool) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]byte, 1+w) // filter byte 0, then zeros
	for range h {
		if _, err := zw.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	idat := z.Bytes()
	if truncate {
		idat = idat[:64]
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr, uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8-bit gray
	out := pngChunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	out = pngChunk(out, "IDAT", idat)
	if !truncate {
		out = pngChunk(out, "IEND", nil)
	}
	return out
}

// png16 is a w x h 16-bit RGBA PNG: 8 bytes a pixel in memory, the most of
// any format.
func png16(t testing.TB, w, h int) []byte {
	t.Helper()
	m := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegSOF is a JPEG whose frame header (SOF0, or SOF2 when progressive)
// claims w x h with three components, followed by a scan header and no
// data.
func jpegSOF(w, h uint16, progressive bool) []byte {
	marker := byte(0xC0)
	if progressive {
		marker = 0xC2
	}
	out := []byte{0xFF, 0xD8, 0xFF, marker, 0, 17, 8}
	out = binary.BigEndian.AppendUint16(out, h)
	out = binary.BigEndian.AppendUint16(out, w)
	out = append(out, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	return append(out, 0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0)
}

// gifScreen is a GIF whose logical screen claims w x h.
func gifScreen(w, h uint16) []byte {
	out := []byte("GIF89a")
	out = binary.LittleEndian.AppendUint16(out, w)
	out = binary.LittleEndian.AppendUint16(out, h)
	return append(out, 0, 0, 0, ';')
}

// webpFile wraps one chunk in a RIFF WEBP container.
func webpFile(fourcc string, chunk []byte) []byte {
	body := append([]byte("WEBP"+fourcc), binary.LittleEndian.AppendUint32(nil, uint32(len(chunk)))...)
	body = append(body, chunk...)
	if len(chunk)%2 == 1 {
		body = append(body, 0)
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
}

// webpVP8X claims a w x h canvas (each at most 2^24, the product below
// 2^31 for the decoder to accept it).
func webpVP8X(w, h uint32) []byte {
	c := make([]byte, 10)
	c[4], c[5], c[6] = byte(w-1), byte((w-1)>>8), byte((w-1)>>16)
	c[7], c[8], c[9] = byte(h-1), byte((h-1)>>8), byte((h-1)>>16)
	return webpFile("VP8X", c)
}

// webpVP8L is a lossless frame header claiming w x h (each at most 2^14).
func webpVP8L(w, h uint32) []byte {
	bits := (w - 1) | (h-1)<<14
	return webpFile("VP8L", append([]byte{0x2F}, binary.LittleEndian.AppendUint32(nil, bits)...))
}

// webpVP8 is a lossy key frame header claiming w x h (each below 2^14).
func webpVP8(w, h uint16) []byte {
	c := []byte{0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A} // key frame, version 0, shown; partition 0 of 0x10 bytes
	c = binary.LittleEndian.AppendUint16(c, w)
	c = binary.LittleEndian.AppendUint16(c, h)
	return webpFile("VP8 ", append(c, make([]byte, 16)...))
}

// TestHugeDimensionsRefusedBeforeAllocating: a header claiming more pixels
// than the limit is refused from the header alone, in every format, for
// well under 1 MiB of allocation, however many pixels it claims.
func TestHugeDimensionsRefusedBeforeAllocating(t *testing.T) {
	const bound = 1 << 20
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"png header 50000x50000", pngHeader(50000, 50000), ErrTooLarge},
		{"png bomb 10000x10000, a whole valid file", pngBomb(t, 10000, 10000, false), ErrTooLarge},
		{"png bomb 2000x2000 in 4 KB", pngBomb(t, 2000, 2000, false), ErrTooLarge},
		{"jpeg baseline 65535x65535", jpegSOF(65535, 65535, false), ErrTooLarge},
		{"jpeg progressive 65535x65535", jpegSOF(65535, 65535, true), ErrTooLarge},
		{"gif 65535x65535", gifScreen(65535, 65535), ErrTooLarge},
		{"webp VP8X 46340x46340", webpVP8X(46340, 46340), ErrTooLarge},
		{"webp VP8X 2^24 x 2^24, over the format's own bound", webpVP8X(1<<24, 1<<24), ErrCorrupt},
		{"webp lossless 16384x16384", webpVP8L(16384, 16384), ErrTooLarge},
		{"webp lossy 16383x16383", webpVP8(16383, 16383), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDecoder(t, Config{MaxPixels: 1 << 20})
			var err error
			alloc := allocated(func() { _, err = d.Decode(tt.data) })
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			t.Logf("%d-byte input: %v; %d bytes allocated", len(tt.data), err, alloc)
			if alloc > bound {
				t.Fatalf("refusing allocated %d bytes, bound %d", alloc, bound)
			}
		})
	}
}

// TestMemoryBoundedByPixelLimit: an input whose header passes the limit
// may make a decoder allocate its whole canvas before the data turns out
// to be cut short, or inflate a tiny file to the full canvas. What a
// decode allocates is bounded by the pixel limit (bytesPerPixel per
// allowed pixel), never by what the header claims or the file size.
func TestMemoryBoundedByPixelLimit(t *testing.T) {
	const (
		side          = 1024
		limit         = side * side
		bytesPerPixel = 12 // 16-bit RGBA canvas (8) + RGB output (3), rounded up
	)
	big16 := png16(t, side, side)
	tests := []struct {
		name string
		data []byte
		want error // nil: decodes
	}{
		{"png bomb at the limit", pngBomb(t, side, side, false), nil},
		{"png bomb at the limit, data cut short", pngBomb(t, side, side, true), ErrCorrupt},
		{"16-bit png at the limit", big16, nil},
		{"16-bit png at the limit, data cut short", big16[:4096], ErrCorrupt},
		{"jpeg at the limit, data cut short", encodeJPEG(t, photo(side, side), 90)[:4096], ErrCorrupt},
		{"gif at the limit, data cut short", encodeGIF(t, photo(side, side))[:4096], ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDecoder(t, Config{MaxPixels: limit})
			var (
				m   Image
				err error
			)
			alloc := allocated(func() { m, err = d.Decode(tt.data) })
			switch {
			case tt.want == nil && err != nil:
				t.Fatal(err)
			case tt.want == nil && (m.Width != side || m.Height != side):
				t.Fatalf("decoded %dx%d", m.Width, m.Height)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			t.Logf("%d-byte input: %.1f bytes allocated per allowed pixel", len(tt.data), float64(alloc)/limit)
			if alloc > bytesPerPixel*limit {
				t.Fatalf("allocated %d bytes, bound %d", alloc, bytesPerPixel*limit)
			}
		})
	}
}

// TestHugeExif: a JPEG carrying about 1 MB of EXIF (16 APP1 segments of
// 60 KB, with absurd IFD offsets and entry counts) decodes like the same
// JPEG without it; the EXIF costs no allocation beyond a plain decode, and
// an Orientation tag after the junk is still found. Cut inside the EXIF, it
// is refused as corrupt.
func TestHugeExif(t *testing.T) {
	plain := encodeJPEG(t, photo(48, 32), 90)
	le := binary.LittleEndian
	junk := func(off uint32, count uint16) []byte {
		seg := make([]byte, 60_000)
		copy(seg, "Exif\x00\x00II*\x00")
		le.PutUint32(seg[10:], off)
		le.PutUint16(seg[14:], count)
		return seg
	}
	withJunk := func(jpg []byte) []byte {
		for i := range 16 {
			seg := junk(0xFFFFFFF0, 1) // IFD offset far past the segment
			if i%2 == 1 {
				seg = junk(8, 0xFFFF) // 65535 entries in 60 KB
			}
			jpg = withSegment(jpg, 0xE1, seg)
		}
		return jpg
	}
	huge := withJunk(plain)
	rotated := withJunk(appendExif(plain, 6, le)) // the Orientation segment comes last
	d := mustDecoder(t, Config{})

	want, err := d.Decode(plain)
	if err != nil {
		t.Fatal(err)
	}
	base := allocated(func() { _, _ = d.Decode(plain) })
	var got Image
	alloc := allocated(func() { got, err = d.Decode(huge) })
	if err != nil {
		t.Fatalf("%d bytes of EXIF: %v", len(huge)-len(plain), err)
	}
	if !bytes.Equal(got.Pix, want.Pix) || got.Width != want.Width {
		t.Fatal("EXIF changed the pixels")
	}
	t.Logf("%d bytes of EXIF: %d bytes allocated, %d without", len(huge)-len(plain), alloc, base)
	if alloc > base+64<<10 {
		t.Fatalf("EXIF cost %d bytes of allocation", alloc-base)
	}
	if got, err := d.Decode(rotated); err != nil || got.Width != want.Height || got.Height != want.Width {
		t.Fatalf("orientation 6 after junk EXIF: %dx%d, %v; want %dx%d", got.Width, got.Height, err, want.Height, want.Width)
	}
	if _, err := d.Decode(huge[:len(huge)/2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("cut inside the EXIF: err = %v, want ErrCorrupt", err)
	}
}

// TestCorruptHeaders: a header that sniffs as a format but does not parse
// is refused as corrupt, before any pixel memory.
func TestCorruptHeaders(t *testing.T) {
	sof := jpegSOF(16, 16, false)
	sof[5] = 200 // SOF length past the end of the file
	zeroJPEG := jpegSOF(0, 16, false)
	badWebP := webpVP8(16, 16)
	badWebP[23] = 0 // the key frame's start code
	tests := []struct {
		name string
		data []byte
	}{
		{"jpeg SOF length past the end", sof},
		{"jpeg zero width", zeroJPEG},
		{"jpeg without SOF", []byte{0xFF, 0xD8, 0xFF, 0xD9}},
		{"gif without a frame", gifScreen(16, 16)},
		{"gif zero size", gifScreen(0, 0)},
		{"webp bad start code", badWebP},
		{"webp chunk longer than the file", webpVP8X(16, 16)[:20]},
		{"png IHDR of the wrong length", pngChunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", make([]byte, 5))},
		{"png bit depth 3", func() []byte { b := pngHeader(16, 16); b[24] = 3; return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDecoder(t, Config{})
			var err error
			alloc := allocated(func() { _, err = d.Decode(tt.data) })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if alloc > 1<<20 {
				t.Fatalf("refusing allocated %d bytes", alloc)
			}
		})
	}
}
