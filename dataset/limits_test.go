package dataset

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/supflow/supflow/stages/decode"
)

// streamedPNG writes a w x h 8-bit gray PNG of constant value v to path,
// compressing its rows as they are made: a many-megapixel image costs
// kilobytes of memory and of disk (7800x7800 black is 197 KB).
func streamedPNG(t *testing.T, path string, w, h int, v byte) {
	t.Helper()
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestSpeed)
	row := bytes.Repeat([]byte{v}, w+1)
	row[0] = 0 // filter: none
	for range h {
		if _, err := zw.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.Write(&out, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8-bit gray
	chunk("IHDR", ihdr)
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// allocated runs f and returns the bytes it allocated in all.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestIngestSkipsImagesDecodeRefuses is the regression test of ingest
// accepting images up to 64 MP while decode refuses over 50 MP: one 7100x7100
// black PNG (50.4 MP, 50 KB) made it into the manifest and moved the data
// set's mean and std towards 0. An image over decode's default pixel limit
// is refused from its header (never decoded), left out of the manifest,
// the counts and the statistics, which come only from samples that train.
func TestIngestSkipsImagesDecodeRefuses(t *testing.T) {
	dir := t.TempDir()
	shades := []uint8{40, 90, 160, 220}
	for i, v := range shades {
		writePNG(t, filepath.Join(dir, "train", []string{"a", "b"}[i%2], string(rune('p'+i))+".png"), 8, 8, color.Gray{Y: v})
	}
	streamedPNG(t, filepath.Join(dir, "train/a/huge.png"), 7100, 7100, 0)
	src, err := OpenImageFolder(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	b := newMemBucket()
	var rep Report
	alloc := allocated(func() {
		rep, err = Ingest(t.Context(), b, src, Options{Prefix: "ds"})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rep.Entries {
		if filepath.Base(e.Key) == "huge.png" {
			t.Errorf("manifest holds %s, which decode refuses", e.Key)
		}
	}
	var vals []float64
	for _, v := range shades {
		vals = append(vals, float64(v)/255)
	}
	mean, std := meanStdOf(vals)
	if rep.Info.Counts["train"] != len(shades) || math.Abs(rep.Info.Mean[0]-mean) > 1e-9 || math.Abs(rep.Info.Std[0]-std) > 1e-9 {
		t.Errorf("train count %d, mean %.5f, std %.5f; want %d, %.5f, %.5f from the images that train",
			rep.Info.Counts["train"], rep.Info.Mean[0], rep.Info.Std[0], len(shades), mean, std)
	}
	if alloc > 32<<20 {
		t.Errorf("ingest allocated %d MiB: the refused image was decoded", alloc>>20)
	}
	if rep.Refused != 1 {
		t.Errorf("report counts %d refused images, want 1", rep.Refused)
	}
}

// TestIngestBoundsFileReads is the regression test of ingest reading each
// whole file before looking at its header (a 6 GB sparse file named .png
// made it allocate 6.4 GB and die): a file over the size limit is refused
// unread, and the rest of a file is streamed: data after a small image's
// end costs no memory.
func TestIngestBoundsFileReads(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "train/a/ok.png"), 8, 8, color.Gray{Y: 100})
	writePNG(t, filepath.Join(dir, "train/b/ok2.png"), 8, 8, color.Gray{Y: 200})
	// Sparse: no disk used. 300 MiB is over the default file limit.
	sparse := filepath.Join(dir, "train/a/sparse.png")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(300 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A valid image followed by 40 MiB of zeros (sparse too), under it.
	tail := filepath.Join(dir, "train/b/tail.png")
	writePNG(t, tail, 8, 8, color.Gray{Y: 150})
	st, _ := os.Stat(tail)
	if err := os.Truncate(tail, st.Size()+40<<20); err != nil {
		t.Fatal(err)
	}
	src, err := OpenImageFolder(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	alloc := allocated(func() {
		rep, err = Ingest(t.Context(), newMemBucket(), src, Options{Prefix: "ds"})
	})
	if err != nil {
		t.Fatalf("Ingest: %v (a file over the limit must be skipped, not stop the ingest)", err)
	}
	if n := len(rep.Entries); n != 3 {
		t.Errorf("%d images ingested, want ok, ok2 and tail", n)
	}
	if alloc > 16<<20 {
		t.Errorf("ingest allocated %d MiB for four 8x8 images", alloc>>20)
	}
	if rep.Refused != 1 {
		t.Errorf("report counts %d refused files, want 1", rep.Refused)
	}
}

// TestIngestLimitsAreDecodes: ingest's default limits are decode's
// defaults, so that with no configuration it keeps only images decode
// takes (cmd passes the configured decode.max_pixels and
// decode.max_object_bytes).
func TestIngestLimitsAreDecodes(t *testing.T) {
	if DefaultMaxPixels != decode.DefaultMaxPixels || DefaultMaxObjectBytes != decode.DefaultMaxObjectBytes {
		t.Fatalf("ingest limits %d pixels, %d bytes; decode's defaults %d, %d",
			DefaultMaxPixels, DefaultMaxObjectBytes, decode.DefaultMaxPixels, decode.DefaultMaxObjectBytes)
	}
	var o Options
	o.setDefaults()
	if d := decode.DefaultConfig(); o.MaxPixels != d.MaxPixels || o.MaxObjectBytes != d.MaxObjectBytes {
		t.Fatalf("Options defaults %d pixels, %d bytes; decode.DefaultConfig %d, %d", o.MaxPixels, o.MaxObjectBytes, d.MaxPixels, d.MaxObjectBytes)
	}
}

// gifHeader is a GIF whose logical screen is w x h, cut after its header
// and global color table: enough for DecodeConfig, not for Decode.
func gifHeader(w, h int) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, uint16(w))
	b = binary.LittleEndian.AppendUint16(b, uint16(h))
	return append(b, 0x80, 0, 0, 0, 0, 0, 255, 255, 255) // 2-color global table
}

// TestIngestRefusesEveryLimit: each limit of Options refuses an image from
// the cheapest evidence (file size, header, encoded size), whatever the
// format, the ingest goes on with the rest, and each refused image is
// counted and logged by name.
func TestIngestRefusesEveryLimit(t *testing.T) {
	dir := t.TempDir()
	for i, v := range []uint8{30, 200, 90, 140} {
		writePNG(t, filepath.Join(dir, "train", []string{"a", "b"}[i%2], string(rune('p'+i))+".png"), 4, 4, color.Gray{Y: v})
	}
	// 600 pixels.
	writePNG(t, filepath.Join(dir, "train/a/wide.png"), 300, 2, color.Gray{Y: 7})
	// 20000 pixels, small file.
	streamedPNG(t, filepath.Join(dir, "train/b/tall.png"), 1, 20000, 9)
	// 3.6 GP from its header.
	os.WriteFile(filepath.Join(dir, "train/a/screen.gif"), gifHeader(60000, 60000), 0o600)
	// File over 4096.
	os.WriteFile(filepath.Join(dir, "train/b/fat.png"), append(mustPNG(t, 4, 4), make([]byte, 5000)...), 0o600)
	// 20x20 of noise: over 300 bytes encoded.
	writeNoisePNG(t, filepath.Join(dir, "train/a/noise.png"), 20, 20)
	src, err := OpenImageFolder(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	rep, err := Ingest(t.Context(), newMemBucket(), src, Options{Prefix: "ds", MaxPixels: 500, MaxFileBytes: 4096, MaxObjectBytes: 300,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Entries) != 4 || rep.Refused != 5 || rep.Info.Counts["train"] != 4 {
		t.Errorf("%d images kept, %d refused, train count %d; want 4, 5, 4", len(rep.Entries), rep.Refused, rep.Info.Counts["train"])
	}
	for name, why := range map[string]string{"wide": "300x2 is over 500 pixels", "tall": "1x20000 is over 500 pixels",
		"screen": "60000x60000 is over 500 pixels", "fat": "over the limit of 4096", "noise": "over the object limit of 300"} {
		if !regexp.MustCompile(`id=` + name + ` reason=.*` + why).MatchString(logs.String()) {
			t.Errorf("no log line for %s refused as %q:\n%s", name, why, logs.String())
		}
	}
	// Statistics of the 4 kept images only.
	mean, _ := meanStdOf([]float64{30. / 255, 200. / 255, 90. / 255, 140. / 255})
	if math.Abs(rep.Info.Mean[0]-mean) > 1e-9 {
		t.Errorf("mean %v, want %v from the kept images", rep.Info.Mean[0], mean)
	}
	// Everything refused: an error, not an empty data set.
	_, err = Ingest(t.Context(), newMemBucket(), src, Options{MaxPixels: 1})
	if !errors.Is(err, ErrSource) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Ingest with every image refused = %v", err)
	}
}

// mustPNG is a w x h mid-gray PNG.
func mustPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeNoisePNG writes a w x h gray PNG of pseudo-random pixels, which
// compresses badly.
func writeNoisePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	x := uint32(12345)
	for i := range img.Pix {
		x = x*1664525 + 1013904223
		img.Pix[i] = uint8(x >> 24)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
