package imgdecode

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"
)

// chunk is one chunk for buildPNG.
type chunk struct {
	typ  string
	data []byte
}

// buildPNG writes the signature and chunks, with their checksums.
func buildPNG(chunks ...chunk) []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	for _, c := range chunks {
		b = pngChunk(b, c.typ, c.data)
	}
	return b
}

func ihdr(w, h int, depth, ctype, interlace byte) chunk {
	d := binary.BigEndian.AppendUint32(nil, uint32(w))
	d = binary.BigEndian.AppendUint32(d, uint32(h))
	return chunk{"IHDR", append(d, depth, ctype, 0, 0, interlace)}
}

func deflate(t testing.TB, raw []byte) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// randomRows is h rows of random filtered bytes, each with a random filter
// type 0..4: any such data is a valid image, and together the rows use
// every filter with and without a row above.
func randomRows(rng *rand.Rand, w, h, bpp int) []byte {
	raw := make([]byte, h*(1+w*bpp))
	for i := range raw {
		raw[i] = byte(rng.IntN(256))
	}
	for y := range h {
		raw[y*(1+w*bpp)] = byte(rng.IntN(5))
	}
	return raw
}

// split cuts z into n IDAT chunks, one of them empty.
func split(z []byte, n int) []chunk {
	var out []chunk
	for i := range n {
		out = append(out, chunk{"IDAT", z[i*len(z)/n : (i+1)*len(z)/n]})
	}
	if n > 1 {
		out = append(out[:1], append([]chunk{{"IDAT", nil}}, out[1:]...)...)
	}
	return out
}

// stdPixels is what Decode made of data before decodePNG: image/png, then
// toPixels.
func stdPixels(data []byte, gray bool) (Image, error) {
	m, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return Image{}, err
	}
	return toPixels(m, gray, false), nil
}

func samePixels(a, b Image) bool {
	return a.Width == b.Width && a.Height == b.Height && a.Channels == b.Channels && bytes.Equal(a.Pix, b.Pix)
}

// TestDecodePNGMatchesImagePNG: the PNGs decodePNG takes (8-bit gray,
// gray+alpha, RGB, RGBA; every filter; IDAT in one or several chunks, one
// of them empty; ancillary chunks before and after) come out exactly as
// image/png + toPixels make them, in RGB and in gray.
func TestDecodePNGMatchesImagePNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := chunk{"tEXt", []byte("Comment\x00made by hand")}
	for _, ctype := range []byte{0, 2, 4, 6} {
		bpp := pngBytesPerPixel[ctype]
		for _, size := range [][2]int{{1, 1}, {3, 2}, {17, 5}, {32, 32}, {28, 28}} {
			for _, pieces := range []int{1, 3} {
				raw := randomRows(rng, size[0], size[1], bpp)
				chunks := append([]chunk{ihdr(size[0], size[1], 8, ctype, 0), text}, split(deflate(t, raw), pieces)...)
				data := buildPNG(append(chunks, text, chunk{"IEND", nil})...)
				for _, gray := range []bool{false, true} {
					want, err := stdPixels(data, gray)
					if err != nil {
						t.Fatalf("type %d %v: image/png: %v", ctype, size, err)
					}
					got, ok := decodePNG(data, gray)
					if !ok || !samePixels(got, want) {
						t.Fatalf("type %d %v in %d IDAT, gray %v: ok %v, pixels differ from image/png's", ctype, size, pieces, gray, ok)
					}
				}
			}
		}
	}
	// What Go's encoder writes, as ingest stores data sets.
	for _, m := range []image.Image{photo(32, 32), grayPhoto(28, 28), photo(224, 160)} {
		data := encodePNG(t, m)
		for _, gray := range []bool{false, true} {
			want, _ := stdPixels(data, gray)
			if got, ok := decodePNG(data, gray); !ok || !samePixels(got, want) {
				t.Fatalf("%T %v gray %v: ok %v, pixels differ", m, m.Bounds(), gray, ok)
			}
		}
	}
}

func grayPhoto(w, h int) *image.Gray {
	p, m := photo(w, h), image.NewGray(image.Rect(0, 0, w, h))
	for i := range w * h {
		m.Pix[i] = p.Pix[4*i+1]
	}
	return m
}

// TestDecodePNGLeavesTheRestToImagePNG: what decodePNG does not take, or
// finds fault with, it hands back (ok false), and Decode's answer is then
// image/png's: the same pixels, or an ErrCorrupt.
func TestDecodePNGLeavesTheRestToImagePNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	raw := randomRows(rng, 4, 3, 3)
	z := deflate(t, raw)
	iend := chunk{"IEND", nil}
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White})
	pal.Pix[5] = 1
	badFilter := append([]byte(nil), raw...)
	badFilter[0] = 5
	badCRC := buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"IDAT", z}, iend)
	badCRC[len(badCRC)-20]++
	for _, tc := range []struct {
		name  string
		data  []byte
		valid bool // image/png decodes it
	}{
		{"palette", encodePNG(t, pal), true},
		{"16-bit", encodePNG(t, image.NewGray16(image.Rect(0, 0, 3, 3))), true},
		{"transparency chunk", buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"tRNS", []byte{0, 1, 0, 2, 0, 3}}, chunk{"IDAT", z}, iend), true},
		{"suggested palette", buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"PLTE", []byte{1, 2, 3}}, chunk{"IDAT", z}, iend), true},
		{"IDAT after a gap", buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"IDAT", z}, chunk{"tEXt", []byte("a\x00b")}, chunk{"IDAT", []byte{1}}, iend), true},
		{"interlaced", buildPNG(ihdr(4, 3, 8, 2, 1), chunk{"IDAT", z}, iend), false},
		{"bad checksum", badCRC, false},
		{"filter type 5", buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"IDAT", deflate(t, badFilter)}, iend), false},
		{"too few rows", buildPNG(ihdr(4, 4, 8, 2, 0), chunk{"IDAT", z}, iend), false},
		{"data after the stream", buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"IDAT", append(append([]byte(nil), z...), 0)}, iend), true},
		{"too much pixel data", buildPNG(ihdr(4, 2, 8, 2, 0), chunk{"IDAT", z}, iend), false},
		{"bad adler32", buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"IDAT", append(append([]byte(nil), z[:len(z)-1]...), z[len(z)-1]+1)}, iend), false},
		{"no IEND", buildPNG(ihdr(4, 3, 8, 2, 0), chunk{"IDAT", z}), false},
		{"no IDAT", buildPNG(ihdr(4, 3, 8, 2, 0), iend), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := decodePNG(tc.data, false); ok {
				t.Fatal("decodePNG took it")
			}
			want, stdErr := stdPixels(tc.data, false)
			if (stdErr == nil) != tc.valid {
				t.Fatalf("image/png: %v; the case expects valid %v", stdErr, tc.valid)
			}
			got, err := mustDecoder(t, Config{}).Decode(tc.data)
			switch {
			case tc.valid && (err != nil || !samePixels(got, want)):
				t.Fatalf("Decode = %v, or pixels other than image/png's", err)
			case !tc.valid && !refusal(err):
				t.Fatalf("Decode = %v, want a refusal", err)
			}
		})
	}
}

// TestDecodePNGAllocations: a decoded small PNG costs its output pixels
// and little else (image/png allocated a 43 KB inflater and a 4 KB image
// for each; what is left is compress/flate's tables for long codes).
func TestDecodePNGAllocations(t *testing.T) {
	data := encodePNG(t, photo(32, 32))
	decodePNG(data, false)
	const n = 100
	per := allocated(func() {
		for range n {
			decodePNG(data, false)
		}
	}) / n
	if out := uint64(3 * 32 * 32); per > out+2048 {
		t.Fatalf("%d bytes allocated per image for %d bytes of pixels", per, out)
	}
}

// FuzzPNGFast checks that whatever decodePNG decodes, image/png decodes to
// the same pixels, and that every header readIHDR takes (Decode's size
// check reads it instead of png.DecodeConfig) png.DecodeConfig takes too,
// with the same size. Each input is also tried with its chunk checksums
// made right, so that the fuzzer gets past them to the chunk order, the
// stream and the filters.
func FuzzPNGFast(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, ctype := range []byte{0, 2, 4, 6} {
		raw := randomRows(rng, 5, 4, pngBytesPerPixel[ctype])
		f.Add(buildPNG(ihdr(5, 4, 8, ctype, 0), chunk{"IDAT", deflate(f, raw)}, chunk{"IEND", nil}))
	}
	f.Add(encodePNG(f, photo(9, 7)))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, fixChecksums(data)} {
			c, err := png.DecodeConfig(bytes.NewReader(d))
			if w, h, _, _, ok := readIHDR(d); ok && (err != nil || c.Width != w || c.Height != h) {
				t.Fatalf("readIHDR took a header as %dx%d, png.DecodeConfig as %dx%d (%v)", w, h, c.Width, c.Height, err)
			}
			// Decode checks the size from the header before decodePNG.
			if err != nil || c.Width*c.Height > 1<<20 {
				continue
			}
			for _, gray := range []bool{false, true} {
				got, ok := decodePNG(d, gray)
				if !ok {
					continue
				}
				want, err := stdPixels(d, gray)
				if err != nil || !samePixels(got, want) {
					t.Fatalf("decodePNG took a file image/png %v (gray %v)", errOr(err, "decodes to other pixels"), gray)
				}
			}
		}
	})
}

// fixChecksums returns data with every whole chunk's CRC recomputed.
func fixChecksums(data []byte) []byte {
	out := append([]byte(nil), data...)
	for off := 8; off+12 <= len(out); {
		n := int(binary.BigEndian.Uint32(out[off:]))
		if n < 0 || n > len(out)-off-12 {
			break
		}
		binary.BigEndian.PutUint32(out[off+8+n:], crc32.ChecksumIEEE(out[off+4:off+8+n]))
		off += 12 + n
	}
	return out
}

func errOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}
