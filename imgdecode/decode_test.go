package imgdecode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/supflow/supflow/config/field"
)

// pattern is the deterministic test image of testdata/golden.py.
func pattern(w, h, c int) []byte {
	pix := make([]byte, 0, w*h*c)
	for y := range h {
		for x := range w {
			for ch := range c {
				pix = append(pix, byte((x*13+y*29+ch*71+(x*y)%17*5)%256))
			}
		}
	}
	return pix
}

// photo is a smooth image with texture at several scales, the kind of
// content photographs have and JPEG keeps.
func photo(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fx, fy := float64(x), float64(y)
			i := m.PixOffset(x, y)
			m.Pix[i] = byte(x * 255 / w)
			m.Pix[i+1] = byte(float64(y*200/h) + 40*math.Sin(fx/3)*math.Cos(fy/4))
			m.Pix[i+2] = byte(128 + 60*math.Sin(fx/17+fy/11) + 20*math.Sin(fx*fy/900))
			m.Pix[i+3] = 255
		}
	}
	return m
}

// photographs returns up to n real JPEG photographs of at most maxPixels
// from the Debian package plasma-workspace-wallpapers, each from a
// different wallpaper, or none when the package is not installed.
func photographs(t testing.TB, n, maxPixels int) [][]byte {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/share/wallpapers/*/contents/images")
	var out [][]byte
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if c, err := jpeg.DecodeConfig(bytes.NewReader(b)); err != nil || c.Width*c.Height > maxPixels {
				continue
			}
			out = append(out, b)
			break
		}
		if len(out) == n {
			break
		}
	}
	return out
}

func mustDecoder(t testing.TB, cfg Config) *Decoder {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// meanAbs is the mean absolute difference of two equal-length byte slices.
func meanAbs(a, b []byte) float64 {
	var s int
	for i := range a {
		d := int(a[i]) - int(b[i])
		s += max(d, -d)
	}
	return float64(s) / float64(len(a))
}

// rgbOf is the reference conversion, pixel by pixel: straight-alpha colors
// keep their channels (alpha dropped, as PIL's convert("RGB")), others go
// through color.NRGBA64; 16-bit samples keep their high byte.
func rgbOf(m image.Image) []byte {
	b := m.Bounds()
	out := make([]byte, 0, 3*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			switch c := m.At(x, y).(type) {
			case color.NRGBA:
				out = append(out, c.R, c.G, c.B)
			case color.NYCbCrA:
				r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				out = append(out, r, g, b)
			default:
				n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
				out = append(out, byte(n.R>>8), byte(n.G>>8), byte(n.B>>8))
			}
		}
	}
	return out
}

func TestDecodeFormats(t *testing.T) {
	const w, h = 7, 5
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	copy(rgba.Pix, pattern(w, h, 4))
	for i := 3; i < len(rgba.Pix); i += 4 {
		rgba.Pix[i] = 255
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	copy(nrgba.Pix, pattern(w, h, 4)) // alpha varies: must be dropped, not blended
	gray := image.NewGray(image.Rect(0, 0, w, h))
	copy(gray.Pix, pattern(w, h, 1))
	gray16 := image.NewGray16(image.Rect(0, 0, w, h))
	copy(gray16.Pix, pattern(w, h, 2))
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, w, h))
	copy(rgba64.Pix, pattern(w, h, 8))
	pal := image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9)
	copy(pal.Pix, pattern(w, h, 1))
	palAlpha := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{
		color.NRGBA{10, 20, 30, 255}, color.NRGBA{200, 100, 50, 0}, color.NRGBA{1, 2, 3, 128},
	})
	for i := range palAlpha.Pix {
		palAlpha.Pix[i] = byte(i % 3)
	}
	photoImg := photo(64, 48)

	tests := []struct {
		name    string
		data    []byte
		want    []byte // exact RGB, or reference for tol
		tol     float64
		w, h    int
		wantErr error
	}{
		{name: "png rgb", data: encodePNG(t, rgba), want: rgbOf(rgba), w: w, h: h},
		{name: "png nrgba drops alpha", data: encodePNG(t, nrgba), want: rgbOf(nrgba), w: w, h: h},
		{name: "png gray", data: encodePNG(t, gray), want: rgbOf(gray), w: w, h: h},
		{name: "png gray16", data: encodePNG(t, gray16), want: rgbOf(gray16), w: w, h: h},
		{name: "png nrgba64", data: encodePNG(t, rgba64), want: rgbOf(rgba64), w: w, h: h},
		{name: "png paletted", data: encodePNG(t, pal), want: rgbOf(pal), w: w, h: h},
		{name: "png paletted with transparency", data: encodePNG(t, palAlpha), want: rgbOf(palAlpha), w: w, h: h},
		{name: "gif first frame", data: encodeGIF(t, pal), want: rgbOf(pal), w: w, h: h},
		// Go writes 4:2:0 chroma, which loses part of the fine texture.
		{name: "jpeg rgb", data: encodeJPEG(t, photoImg, 95), want: rgbOf(photoImg), tol: 5, w: 64, h: 48},
		{name: "jpeg gray", data: encodeJPEG(t, gray, 100), want: rgbOf(gray), tol: 2, w: w, h: h},
		// PIL (libwebp) decoded these and upsamples chroma bilinearly; x/image
		// repeats each 4:2:0 chroma sample, hence the tolerance.
		{name: "webp lossy", data: readFile(t, "lossy.webp"), want: readFile(t, "lossy.webp.rgb"), tol: 4, w: 24, h: 16},
		{name: "webp lossy alpha", data: readFile(t, "lossy_alpha.webp"), want: readFile(t, "lossy_alpha.webp.rgb"), tol: 4, w: 24, h: 16},
		{name: "webp lossless alpha", data: readFile(t, "lossless_alpha.webp"), want: readFile(t, "lossless_alpha.webp.rgb"), w: 24, h: 16},
	}
	d := mustDecoder(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got.Width != tt.w || got.Height != tt.h || got.Channels != 3 || len(got.Pix) != tt.w*tt.h*3 {
				t.Fatalf("got %dx%dx%d (%d bytes), want %dx%dx3", got.Width, got.Height, got.Channels, len(got.Pix), tt.w, tt.h)
			}
			if tt.tol == 0 && !bytes.Equal(got.Pix, tt.want) {
				t.Fatalf("pixels differ:\n got %v\nwant %v", got.Pix[:12], tt.want[:12])
			}
			if e := meanAbs(got.Pix, tt.want); e > tt.tol {
				t.Fatalf("mean abs error %.2f > %.2f", e, tt.tol)
			}
		})
	}
}

func TestDecodeGray(t *testing.T) {
	const w, h = 6, 4
	rgb := image.NewNRGBA(image.Rect(0, 0, w, h))
	copy(rgb.Pix, pattern(w, h, 4))
	gray := image.NewGray(image.Rect(0, 0, w, h))
	copy(gray.Pix, pattern(w, h, 1))
	lumaOf := func(m image.Image) []byte {
		var out []byte
		for y := range m.Bounds().Dy() {
			for x := range m.Bounds().Dx() {
				c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
				out = append(out, color.GrayModel.Convert(color.RGBA{c.R, c.G, c.B, 255}).(color.Gray).Y)
			}
		}
		return out
	}
	photoImg := photo(32, 32)
	tests := []struct {
		name string
		data []byte
		want []byte
		tol  float64
	}{
		{"gray png stays", encodePNG(t, gray), gray.Pix, 0},
		{"rgb png to luma", encodePNG(t, rgb), lumaOf(rgb), 0},
		{"rgb jpeg to luma", encodeJPEG(t, photoImg, 100), lumaOf(photoImg), 1.5},
	}
	d := mustDecoder(t, Config{Gray: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got.Channels != 1 || len(got.Pix) != len(tt.want) {
				t.Fatalf("got %d channels, %d bytes; want 1, %d", got.Channels, len(got.Pix), len(tt.want))
			}
			if e := meanAbs(got.Pix, tt.want); e > tt.tol {
				t.Fatalf("mean abs error %.2f > %.2f", e, tt.tol)
			}
		})
	}
}

// TestToPixels covers decoder outputs that no encoder here writes (CMYK,
// YCbCr with alpha) and the generic fallback.
func TestToPixels(t *testing.T) {
	r := image.Rect(0, 0, 5, 3)
	cmyk := image.NewCMYK(r)
	copy(cmyk.Pix, pattern(5, 3, 4))
	ycc := image.NewNYCbCrA(r, image.YCbCrSubsampleRatio420)
	copy(ycc.Y, pattern(5, 3, 1))
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = byte(40*i), byte(255-30*i)
	}
	copy(ycc.A, pattern(5, 3, 1))
	premul := image.NewRGBA(r)
	copy(premul.Pix, []byte{100, 50, 0, 200, 0, 0, 0, 0, 10, 20, 30, 40})
	rgba64 := image.NewRGBA64(r)
	copy(rgba64.Pix, pattern(5, 3, 8))
	for i := 6; i < len(rgba64.Pix); i += 8 { // translucent: samples are un-premultiplied
		rgba64.Pix[i], rgba64.Pix[i+1] = 0xFF-byte(i), 0xFF
	}
	nrgba64 := image.NewNRGBA64(r)
	copy(nrgba64.Pix, pattern(5, 3, 8))
	generic := image.NewAlpha16(r)
	copy(generic.Pix, pattern(5, 3, 2))
	sub := photo(8, 8).SubImage(image.Rect(2, 3, 7, 6))
	tests := []struct {
		name string
		m    image.Image
	}{
		{"cmyk", cmyk}, {"nycbcra", ycc}, {"premultiplied rgba", premul}, {"rgba64", rgba64}, {"nrgba64", nrgba64},
		{"generic", generic}, {"sub-image", sub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toPixels(tt.m, false, false)
			want := rgbOf(tt.m)
			// color.NRGBA64 un-premultiplies at 16 bits; we do it at 8.
			if got.Width != 5 || got.Height != 3 || meanAbs(got.Pix, want) > 0.5 {
				t.Fatalf("got %dx%d %v, want 5x3 %v", got.Width, got.Height, got.Pix, want)
			}
		})
	}
}

func TestResizeMatchesPIL(t *testing.T) {
	tests := []struct {
		golden       string
		w, h, c      int
		shorter      int
		wantW, wantH int
	}{
		{"resize_37x23_to_11x7.rgb", 37, 23, 3, 7, 11, 7},
		{"resize_37x23_to_48x30.rgb", 37, 23, 3, 30, 48, 30},
		{"resize_40x64_to_16x25.gray", 40, 64, 1, 16, 16, 25},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			ow, oh := shorterSide(tt.w, tt.h, tt.shorter)
			if ow != tt.wantW || oh != tt.wantH {
				t.Fatalf("shorterSide = %dx%d, want %dx%d", ow, oh, tt.wantW, tt.wantH)
			}
			got := resizeBilinear(Image{Width: tt.w, Height: tt.h, Channels: tt.c, Pix: pattern(tt.w, tt.h, tt.c)}, ow, oh)
			want := readFile(t, tt.golden)
			for i := range want {
				if d := int(got.Pix[i]) - int(want[i]); d > 1 || d < -1 {
					t.Fatalf("byte %d = %d, PIL %d", i, got.Pix[i], want[i])
				}
			}
		})
	}
}

// appendExif inserts an APP1 Exif segment holding an IFD0 with one
// Orientation entry right after SOI.
func appendExif(jpg []byte, orient uint16, bo binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if bo == binary.LittleEndian {
		copy(tiff, "II*\x00")
	} else {
		copy(tiff, "MM\x00*")
	}
	bo.PutUint32(tiff[4:], 8)
	bo.PutUint16(tiff[8:], 1)
	e := tiff[10:]
	bo.PutUint16(e[0:], 0x0112)
	bo.PutUint16(e[2:], 3)
	bo.PutUint32(e[4:], 1)
	bo.PutUint16(e[8:], orient)
	return withSegment(jpg, 0xE1, append([]byte("Exif\x00\x00"), tiff...))
}

func withSegment(jpg []byte, marker byte, payload []byte) []byte {
	seg := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func TestOrientation(t *testing.T) {
	// Six 8x8 blocks A B C / D E F, one color each.
	colors := map[byte]color.RGBA{
		'A': {255, 0, 0, 255}, 'B': {0, 255, 0, 255}, 'C': {0, 0, 255, 255},
		'D': {255, 255, 0, 255}, 'E': {0, 255, 255, 255}, 'F': {255, 0, 255, 255},
	}
	src := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for bi, name := range "ABCDEF" {
		c := colors[byte(name)]
		for y := range 8 {
			for x := range 8 {
				src.Set(bi%3*8+x, bi/3*8+y, c)
			}
		}
	}
	jpg := encodeJPEG(t, src, 100)
	tests := []struct {
		orient uint16
		layout []string // rows of blocks after applying the orientation
	}{
		{1, []string{"ABC", "DEF"}},
		{2, []string{"CBA", "FED"}},
		{3, []string{"FED", "CBA"}},
		{4, []string{"DEF", "ABC"}},
		{5, []string{"AD", "BE", "CF"}},
		{6, []string{"DA", "EB", "FC"}},
		{7, []string{"FC", "EB", "DA"}},
		{8, []string{"CF", "BE", "AD"}},
		{9, []string{"ABC", "DEF"}}, // out of range: ignored
	}
	d := mustDecoder(t, Config{})
	for _, tt := range tests {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			t.Run(bo.String()+string(rune('0'+tt.orient)), func(t *testing.T) {
				got, err := d.Decode(appendExif(jpg, tt.orient, bo))
				if err != nil {
					t.Fatal(err)
				}
				if got.Width != 8*len(tt.layout[0]) || got.Height != 8*len(tt.layout) {
					t.Fatalf("size %dx%d, want %dx%d", got.Width, got.Height, 8*len(tt.layout[0]), 8*len(tt.layout))
				}
				for by, row := range tt.layout {
					for bx := range len(row) {
						i := ((by*8+4)*got.Width + bx*8 + 4) * 3
						want := colors[row[bx]]
						for ch, v := range []byte{want.R, want.G, want.B} {
							if dv := int(got.Pix[i+ch]) - int(v); dv > 8 || dv < -8 {
								t.Fatalf("block (%d,%d) = %v, want %c %v", bx, by, got.Pix[i:i+3], row[bx], want)
							}
						}
					}
				}
			})
		}
	}
}

func TestExifOrientationMalformed(t *testing.T) {
	jpg := encodeJPEG(t, photo(8, 8), 90)
	le := binary.LittleEndian
	hugeCount := appendExif(jpg, 6, le)
	le.PutUint16(hugeCount[4+2+6+8:], 0xFFFF)  // IFD0 entry count past the segment
	le.PutUint16(hugeCount[4+2+6+10:], 0x0100) // and no orientation among those present
	badOffset := appendExif(jpg, 6, le)
	le.PutUint32(badOffset[4+2+6+4:], 0xFFFFFFF0)
	longType := appendExif(jpg, 6, le)
	le.PutUint16(longType[4+2+6+10+2:], 4)
	le.PutUint32(longType[4+2+6+10+8:], 6)
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"none", jpg, 1},
		{"valid", appendExif(jpg, 3, le), 3},
		{"long type", longType, 6},
		{"entry count past end", hugeCount, 1},
		{"ifd offset past end", badOffset, 1},
		{"truncated tiff", withSegment(jpg, 0xE1, []byte("Exif\x00\x00II*")), 1},
		{"bad byte order", withSegment(jpg, 0xE1, []byte("Exif\x00\x00XX*\x00\x08\x00\x00\x00")), 1},
		{"segment length past end", append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF}, "Exif"...), 1},
		{"segment length too small", []byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01, 0, 0}, 1},
		{"other app segment first", appendExif(withSegment(jpg, 0xE0, []byte("JFIF\x00")), 8, le), 8},
		{"max-size segment", withSegment(jpg, 0xE1, append([]byte("Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff"), make([]byte, 65000)...)), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exifOrientation(tt.data); got != tt.want {
				t.Fatalf("exifOrientation = %d, want %d", got, tt.want)
			}
		})
	}
}

// pngHeader returns a PNG signature and a valid IHDR for a w x h RGB image,
// with no pixel data: the shape of a decompression bomb's first bytes.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 4+13)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit RGB
	out := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d")
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func TestDecodeRefuses(t *testing.T) {
	pngData := encodePNG(t, photo(16, 16))
	jpgData := encodeJPEG(t, photo(16, 16), 90)
	gifData := encodeGIF(t, photo(16, 16))
	corruptHeader := append([]byte{}, pngData...)
	corruptHeader[16] ^= 0xFF // IHDR width, CRC no longer matches
	tests := []struct {
		name string
		cfg  Config
		data []byte
		want error
	}{
		{"zero bytes", Config{}, nil, ErrEmpty},
		{"text", Config{}, []byte("hello, not an image\n"), ErrFormat},
		{"bmp is not supported", Config{}, []byte("BM\x3a\x00\x00\x00\x00\x00\x00\x00"), ErrFormat},
		{"png bomb 50000x50000", Config{}, pngHeader(50000, 50000), ErrTooLarge},
		{"over a small limit", Config{MaxPixels: 255}, pngData, ErrTooLarge},
		{"resize would enlarge past the limit", Config{ResizeShorter: 256}, pngHeader(1, 50000), ErrTooLarge},
		{"zero width", Config{}, pngHeader(0, 10), ErrCorrupt},
		{"corrupt png header", Config{}, corruptHeader, ErrCorrupt},
		{"png header only", Config{}, pngHeader(16, 16), ErrCorrupt},
		{"truncated png", Config{}, pngData[:len(pngData)/2], ErrCorrupt},
		{"truncated jpeg", Config{}, jpgData[:len(jpgData)/2], ErrCorrupt},
		{"truncated jpeg, resized", Config{ResizeShorter: 4}, jpgData[:len(jpgData)/2], ErrCorrupt},
		{"truncated gif", Config{}, gifData[:len(gifData)-20], ErrCorrupt},
		{"jpeg magic only", Config{}, []byte{0xFF, 0xD8, 0xFF}, ErrCorrupt},
		{"webp magic only", Config{}, []byte("RIFF\x04\x00\x00\x00WEBP"), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDecoder(t, tt.cfg)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := d.Decode(tt.data)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Fatalf("refusing allocated %d bytes", alloc)
			}
		})
	}
}

// TestDecodeByContent: the name of an object says nothing; its bytes decide.
func TestDecodeByContent(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"png.jpg":  encodePNG(t, photo(4, 4)),
		"text.jpg": []byte("<html>not found</html>"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d := mustDecoder(t, Config{})
	b, _ := os.ReadFile(filepath.Join(dir, "png.jpg"))
	if m, err := d.Decode(b); err != nil || m.Width != 4 {
		t.Fatalf("PNG named .jpg: %+v, %v", m, err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "text.jpg"))
	if _, err := d.Decode(b); !errors.Is(err, ErrFormat) {
		t.Fatalf("text named .jpg: err = %v, want ErrFormat", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg Config
		key string // "" = valid
	}{
		{Config{}, ""}, // New defaults MaxPixels
		{Config{MaxPixels: 1, ResizeShorter: 224, Gray: true}, ""},
		{Config{MaxPixels: maxMaxPixels, ResizeShorter: maxResizeShorter}, ""},
		{Config{MaxPixels: -1}, "max_pixels"},
		{Config{MaxPixels: maxMaxPixels + 1}, "max_pixels"},
		{Config{ResizeShorter: -1}, "resize_shorter"},
		{Config{ResizeShorter: maxResizeShorter + 1}, "resize_shorter"},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if (err == nil) != (tt.key == "") || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("New(%+v) = %v, want ok=%v", tt.cfg, err, tt.key == "")
		}
		if tt.key == "" {
			continue
		}
		if fe := field.List(err); len(fe) != 1 || fe[0].Key != tt.key {
			t.Errorf("New(%+v) = %v, want one error naming %s", tt.cfg, err, tt.key)
		}
	}
	// Validate checks the Config as given: 0 is not a pixel limit.
	if fe := field.List(Config{}.Validate()); len(fe) != 1 || fe[0].Key != "max_pixels" {
		t.Errorf("Config{}.Validate() = %v, want max_pixels", fe)
	}
}

func TestDCTDenom(t *testing.T) {
	tests := []struct{ w, h, shorter, want int }{
		{4000, 3000, 0, 1},
		{4000, 3000, 256, 4},
		{4000, 3000, 250, 8},
		{4000, 3000, 400, 4},
		{1024, 768, 96, 4},
		{800, 600, 200, 2},
		{600, 800, 256, 1},
		{256, 256, 256, 1},
		{100, 100, 256, 1},
	}
	for _, tt := range tests {
		d := mustDecoder(t, Config{ResizeShorter: tt.shorter})
		if got := d.dctDenom(tt.w, tt.h); got != tt.want {
			t.Errorf("dctDenom(%d, %d) with shorter %d = %d, want %d", tt.w, tt.h, tt.shorter, got, tt.want)
		}
	}
}

// TestScaledDecode holds the DCT-scaled path to the plain decode-then-resize
// output, within 2/255 mean absolute error.
func TestScaledDecode(t *testing.T) {
	if mustDecoder(t, Config{}).fast == nil {
		t.Skip("built without libjpeg: no scaled path")
	}
	type tcase struct {
		jpg     []byte
		shorter int
		gray    bool
		exif    uint16
	}
	jpg := encodeJPEG(t, photo(1024, 768), 90)
	tests := []tcase{{jpg, 96, false, 1}, {jpg, 192, false, 6}, {jpg, 256, false, 1}, {jpg, 96, true, 3}}
	for _, p := range photographs(t, 1, 1<<21) {
		tests = append(tests, tcase{p, 256, false, 1}, tcase{p, 128, true, 1})
	}
	for _, tt := range tests {
		d := mustDecoder(t, Config{ResizeShorter: tt.shorter, Gray: tt.gray})
		data := appendExif(tt.jpg, tt.exif, binary.BigEndian)
		fast, err := d.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := d.decode(data, false)
		if err != nil {
			t.Fatal(err)
		}
		if fast.Width != slow.Width || fast.Height != slow.Height || fast.Channels != slow.Channels {
			t.Fatalf("shorter %d: scaled %dx%dx%d, plain %dx%dx%d", tt.shorter, fast.Width, fast.Height, fast.Channels, slow.Width, slow.Height, slow.Channels)
		}
		if e := meanAbs(fast.Pix, slow.Pix); e > 2 {
			t.Errorf("%dx%d to shorter %d, gray %v: mean abs error %.2f > 2", slow.Width, slow.Height, tt.shorter, tt.gray, e)
		}
	}
}

func TestDecodeConcurrent(t *testing.T) {
	d := mustDecoder(t, Config{ResizeShorter: 32})
	data := encodeJPEG(t, photo(200, 150), 90)
	want, err := d.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 8)
	for range 8 {
		go func() {
			got, err := d.Decode(data)
			if err == nil && !bytes.Equal(got.Pix, want.Pix) {
				err = errors.New("concurrent decode differs")
			}
			errc <- err
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// TestConvertMatchesDecode: Convert of what image.Decode returns (ingest's
// path) gives Decode's pixels (decode's path) for each format, WebP's
// limited-range YCbCr included, RGB and gray, and applies the orientation
// Orientation reads from a JPEG's EXIF exactly as Decode does.
func TestConvertMatchesDecode(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	var png8 bytes.Buffer
	if err := png.Encode(&png8, src); err != nil {
		t.Fatal(err)
	}
	jpg := appendExif(encodeJPEG(t, src, 95), 6, binary.LittleEndian)
	for _, data := range [][]byte{readFile(t, "lossy.webp"), readFile(t, "lossy_alpha.webp"), png8.Bytes(), jpg} {
		for _, gray := range []bool{false, true} {
			// The pure-Go decoders on both paths (libjpeg-turbo may round
			// differently from image/jpeg).
			d := &Decoder{cfg: Config{MaxPixels: DefaultMaxPixels, Gray: gray}}
			want, err := d.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			m, format, err := image.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			got := Convert(m, format, gray, Orientation(data))
			if got.Width != want.Width || got.Height != want.Height || got.Channels != want.Channels || !bytes.Equal(got.Pix, want.Pix) {
				t.Errorf("%s gray=%v: Convert gives %dx%dx%d, Decode %dx%dx%d, or other pixels", format, gray,
					got.Width, got.Height, got.Channels, want.Width, want.Height, want.Channels)
			}
		}
	}
	if o := Orientation(jpg); o != 6 {
		t.Errorf("Orientation = %d, want 6", o)
	}
	if o := Orientation(png8.Bytes()); o != 1 {
		t.Errorf("Orientation of a PNG = %d, want 1", o)
	}
}
