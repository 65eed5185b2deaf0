package dataset

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/store"
)

// halves is a w x h JPEG, black on its left half and white on its right.
func halves(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := w / 2; x < w; x++ {
			img.Pix[y*w+x] = 255
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withOrientation inserts an APP1 Exif segment with Orientation o after a
// JPEG's SOI.
func withOrientation(jpg []byte, o uint16) []byte {
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01")    // big-endian, IFD0 at 8, one entry
	tiff = append(tiff, 0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1) // Orientation, SHORT, count 1
	tiff = binary.BigEndian.AppendUint16(tiff, o)
	tiff = append(tiff, 0, 0, 0, 0, 0, 0) // value padding, no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	out := append([]byte{0xFF, 0xD8, 0xFF, 0xE1}, binary.BigEndian.AppendUint16(nil, uint16(len(seg)+2))...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// badTree writes an ImageFolder with good images (PNG, JPEG with EXIF
// orientation 6, WebP) and one entry of every kind ingest leaves out, and
// returns the kinds expected, with their counts, and the good files.
func badTree(t *testing.T) (dir string, want map[string]int, good []string) {
	dir = t.TempDir()
	write := func(p string, b []byte) {
		t.Helper()
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	webp, err := os.ReadFile("../imgdecode/testdata/lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	jpg := testImage(t, 3, 16, 12, "jpeg")
	for p, b := range map[string][]byte{
		"train/cat/a.png":     testImage(t, 1, 16, 12, "png"),
		"train/cat/up.jpg":    withOrientation(halves(t, 16, 8), 6),
		"train/dog/c.png":     testImage(t, 2, 16, 12, "png"),
		"train/dog/d.WEBP":    webp,
		"train/dog/e.jpeg":    jpg,
		"test/cat/f.png":      testImage(t, 4, 16, 12, "png"),
		"test/dog/g.gif":      gifOf(t, 16, 12),
		"test/dog/h.png":      testImage(t, 5, 16, 12, "png"),
		"train/cat/sub/x.png": testImage(t, 6, 16, 12, "png"), // nested
	} {
		write(p, b)
	}
	good = []string{"test/cat/f", "test/dog/g", "test/dog/h", "train/cat/a", "train/cat/up", "train/dog/c", "train/dog/d", "train/dog/e"}
	write("train/cat/empty.png", nil)
	write("train/cat/text.png", []byte("this is not a PNG\n"))
	write("train/dog/trunc.jpg", jpg[:len(jpg)/2])
	write("train/cat/bad\xffname.png", testImage(t, 7, 4, 4, "png"))
	write("train/cat/tab\there.png", testImage(t, 8, 4, 4, "png"))
	write("train/c\x01t/a.png", testImage(t, 9, 4, 4, "png"))
	write("train/cat/.hidden.png", testImage(t, 10, 4, 4, "png"))
	write(".DS_Store", []byte{0})
	write("train/dog/README", []byte("no extension"))
	write("train/dog/notes.txt", []byte("other extension"))
	write("train/dog/c.jpg", jpg) // the stem of c.png
	write("train/loose.png", testImage(t, 11, 4, 4, "png"))
	write("top.png", testImage(t, 12, 4, 4, "png"))
	if err := os.Symlink("a.png", filepath.Join(dir, "train/cat/link.png")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "train/dog/pipe.png"), 0o600); err != nil {
		t.Fatal(err)
	}
	want = map[string]int{
		SkipEmpty: 1, SkipUndecodable: 2, SkipName: 3, SkipHidden: 2, SkipNoExtension: 1, SkipExtension: 1,
		SkipDuplicate: 1, SkipLayout: 2, SkipSymlink: 1, SkipSpecial: 1, SkipNested: 1,
	}
	return dir, want, good
}

func gifOf(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	m, err := png.Decode(bytes.NewReader(testImage(t, 13, w, h, "png")))
	if err != nil {
		t.Fatal(err)
	}
	if err := gif.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestIngestBadFilesEmbedded(t *testing.T) { testIngestBadFiles(t, storetest.New(t)) }

func TestIntegrationIngestBadFilesMinIO(t *testing.T) {
	testIngestBadFiles(t, storetest.MinIO(t, "ingest"))
}

// testIngestBadFiles ingests a tree holding one bad or stray entry of
// every kind: the ingest goes on, keeps exactly the good images (WebP
// included), stores the EXIF-rotated JPEG upright, counts each kind in the
// report, names each entry with its reason in the summary and in
// ingest-report.json in the bucket, and writes no object for a left-out
// entry.
func testIngestBadFiles(t *testing.T, c *store.Client) {
	ctx := t.Context()
	dir, want, good := badTree(t)
	src, err := OpenImageFolder(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Ingest(ctx, c, src, Options{Prefix: "own"})
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	var got []string
	for _, e := range rep.Entries {
		got = append(got, strings.TrimPrefix(e.Key[:len(e.Key)-len(filepath.Ext(e.Key))], "own/"))
	}
	if !slices.Equal(got, good) {
		t.Errorf("manifest %v, want %v", got, good)
	}
	if !maps.Equal(rep.LeftOut, want) || rep.Refused != 0 || rep.Images != len(good) {
		t.Errorf("left out %v, refused %d, images %d; want %v, 0, %d", rep.LeftOut, rep.Refused, rep.Images, want, len(good))
	}
	kinds := map[string]int{}
	for _, s := range rep.LeftOutFiles {
		kinds[s.Kind]++
		if s.Reason == "" || s.Path == "" || strings.ContainsFunc(s.Path, func(r rune) bool { return r < 0x20 || r == 0xFFFD }) {
			t.Errorf("left-out entry %+v: want a printable path and a reason", s)
		}
	}
	if !maps.Equal(kinds, want) {
		t.Errorf("left-out files by kind %v, want %v", kinds, want)
	}
	var sum bytes.Buffer
	rep.WriteSummary(&sum, c.Bucket())
	for _, line := range []string{"8 images (8 written, 0 already stored), 0 refused, 16 left out: 1 duplicate, 1 empty, 1 extension, 2 hidden, 2 layout, 3 name, 1 nested, 1 no_extension, 1 special, 1 symlink, 2 undecodable",
		`name train/cat/bad\xffname.png: the name is not valid UTF-8`, `name train/cat/tab\there.png: the name holds a control character`,
		`name train/c\x01t: the name holds a control character`, "empty train/cat/empty.png: empty file",
		"undecodable train/cat/text.png: image: unknown format", "undecodable train/dog/trunc.jpg: unexpected EOF",
		"symlink train/cat/link.png", "special train/dog/pipe.png", "hidden .DS_Store", "nested train/cat/sub",
		"no_extension train/dog/README", "extension train/dog/notes.txt", "duplicate train/dog/c.png", "layout top.png",
		"layout train/loose.png", "report: s3://" + c.Bucket() + "/own/ingest-report.json"} {
		if !strings.Contains(sum.String(), line) {
			t.Errorf("summary lacks %q:\n%s", line, sum.String())
		}
	}
	raw, err := c.Get(ctx, ReportKey("own"))
	if err != nil {
		t.Fatal(err)
	}
	var stored Report
	if err := json.Unmarshal(raw, &stored); err != nil || !maps.Equal(stored.LeftOut, want) || len(stored.LeftOutFiles) != 16 || stored.Images != len(good) {
		t.Fatalf("stored report %s, %v", raw, err)
	}
	keys := keysOf(t, c, "own/")
	if len(keys) != len(good)+4 { // the images, manifest, classes, info, report
		t.Errorf("bucket holds %v", keys)
	}

	// The EXIF-rotated 16x8 JPEG is stored upright: 8x16, its black left
	// half now on top, as decode would output it from the original.
	d, err := imgdecode.New(imgdecode.Config{})
	if err != nil {
		t.Fatal(err)
	}
	stored16, err := c.Get(ctx, "own/train/cat/up.png")
	if err != nil {
		t.Fatal(err)
	}
	m, err := d.Decode(stored16)
	if err != nil || m.Width != 8 || m.Height != 16 || m.Pix[3*(2*8+4)] > 40 || m.Pix[3*(13*8+4)] < 215 {
		t.Fatalf("stored up.jpg: %dx%d, %v", m.Width, m.Height, err)
	}
	// The WebP is stored as decode converts it (limited-range YCbCr).
	webp, _ := os.ReadFile("../imgdecode/testdata/lossy.webp")
	orig, err := d.Decode(webp)
	if err != nil {
		t.Fatal(err)
	}
	storedWebP, err := c.Get(ctx, "own/train/dog/d.png")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := d.Decode(storedWebP); err != nil || !bytes.Equal(m.Pix, orig.Pix) {
		t.Fatalf("stored WebP differs from decode's pixels of the original (%v)", err)
	}

	// A second run finds the tree unchanged and returns the stored report;
	// forced, it reads every file again, uploads nothing and reports the
	// same left-out files.
	again, err := Ingest(ctx, c, src, Options{Prefix: "own"})
	if err != nil || !again.Unchanged || again.Written != len(good) || !maps.Equal(again.LeftOut, want) {
		t.Fatalf("re-run: %+v, %v", again, err)
	}
	again, err = Ingest(ctx, c, src, Options{Prefix: "own", Force: true})
	if err != nil || again.Unchanged || again.Written != 0 || again.Skipped != len(good) || !maps.Equal(again.LeftOut, want) {
		t.Fatalf("forced re-run: %+v, %v", again, err)
	}
}

// TestImageFolderNothingGood: a tree whose every file is bad fails with
// the counts, after reading all of it.
func TestImageFolderNothingGood(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "train/cat"), 0o700)
	os.WriteFile(filepath.Join(dir, "train/cat/a.png"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "train/cat/b.png"), []byte("text"), 0o600)
	src, err := OpenImageFolder(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Ingest(t.Context(), newMemBucket(), src, Options{})
	if err == nil || !strings.Contains(err.Error(), "empty:1") || !strings.Contains(err.Error(), "undecodable:1") {
		t.Fatalf("Ingest = %v, want the left-out counts", err)
	}
}
