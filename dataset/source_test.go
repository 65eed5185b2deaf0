package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// collect reads the samples of src, at most limit of each split (0: all)
// chosen with seed 1.
func collect(t *testing.T, src Source, limit int) []Sample {
	t.Helper()
	var out []Sample
	sel := Selection{PerSplit: map[string]int{"train": limit, "test": limit, "val": limit}, Seed: 1}
	err := src.Samples(t.Context(), ReadOptions{Limit: sel}, func(s Sample) error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeIDX writes a tiny idx pair for one split: n images of rows x cols
// whose pixels are all equal to their index, labels i%10.
func writeIDX(t *testing.T, dir, stem string, n, rows, cols int, gz bool) {
	t.Helper()
	var img, lab bytes.Buffer
	binary.Write(&img, binary.BigEndian, []uint32{idxImagesMagic, uint32(n), uint32(rows), uint32(cols)})
	binary.Write(&lab, binary.BigEndian, []uint32{idxLabelsMagic, uint32(n)})
	for i := range n {
		img.Write(bytes.Repeat([]byte{byte(i)}, rows*cols))
		lab.WriteByte(byte(i % 10))
	}
	for name, b := range map[string][]byte{stem + "-images-idx3-ubyte": img.Bytes(), stem + "-labels-idx1-ubyte": lab.Bytes()} {
		if gz {
			var z bytes.Buffer
			w := gzip.NewWriter(&z)
			w.Write(b)
			w.Close()
			name, b = name+".gz", z.Bytes()
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIDX(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		writeIDX(t, dir, "train", 12, 3, 2, gz)
		writeIDX(t, dir, "t10k", 4, 3, 2, gz)
		src, err := OpenIDX(dir, "tiny", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(src.Classes()) != 10 || src.Channels() != 1 {
			t.Fatalf("classes %v channels %d", src.Classes(), src.Channels())
		}
		all := collect(t, src, 0)
		if len(all) != 16 || all[11].Split != "train" || all[12].Split != "test" {
			t.Fatalf("got %d samples", len(all))
		}
		s := all[11]
		g := s.Image.(*image.Gray)
		if s.ID != "11" || s.Label != 1 || g.Rect.Dx() != 2 || g.Rect.Dy() != 3 || g.Pix[5] != 11 {
			t.Fatalf("sample 11 = %+v %v", s, g.Pix)
		}
		got := collect(t, src, 3)
		if len(got) != 6 || got[3].Split != "test" {
			t.Fatalf("limit 3 gave %d samples", len(got))
		}
		for _, s := range got {
			if id, _ := strconv.Atoi(s.ID); s.Split == "train" && id != int(s.Image.(*image.Gray).Pix[0]) {
				t.Fatalf("limited sample %s holds another image", s.ID) // the ID is the index in the file
			}
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenIDX(dir, "x", nil); !errors.Is(err, ErrSource) {
		t.Fatalf("empty dir: %v", err)
	}
	writeIDX(t, dir, "train", 3, 2, 2, false)
	writeIDX(t, dir, "t10k", 3, 2, 2, false)
	if _, err := OpenIDX(dir, "x", []string{"only"}); !errors.Is(err, ErrSource) {
		t.Fatalf("too few names: %v", err)
	}
	// Corrupt the images magic and truncate the test images.
	p := filepath.Join(dir, "train-images-idx3-ubyte")
	b, _ := os.ReadFile(p)
	b[3] = 0x01
	os.WriteFile(p, b, 0o600)
	src, err := OpenIDX(dir, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Samples(t.Context(), ReadOptions{}, func(Sample) error { return nil }); !errors.Is(err, ErrSource) {
		t.Fatalf("bad magic: %v", err)
	}
	b[3] = 0x03
	os.WriteFile(p, b[:len(b)-1], 0o600)
	if err := src.Samples(t.Context(), ReadOptions{}, func(Sample) error { return nil }); !errors.Is(err, ErrSource) {
		t.Fatalf("truncated: %v", err)
	}
}

// writeCIFAR writes n records per file with label i%classes and R, G, B
// planes filled with i, 2i and 3i.
func writeCIFAR(t testing.TB, dir string, labelBytes, classes int, files []string, n int) {
	t.Helper()
	for _, f := range files {
		var b bytes.Buffer
		for i := range n {
			if labelBytes == 2 {
				b.WriteByte(byte(i % 20)) // coarse label
			}
			b.WriteByte(byte(i % classes))
			for c := 1; c <= 3; c++ {
				b.Write(bytes.Repeat([]byte{byte(c * i)}, cifarPlane))
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCIFAR(t *testing.T) {
	c10 := []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}
	tests := []struct {
		name                string
		labelBytes, classes int
		files               []string
		names               string
		wantTrain, wantTest int
		wantName            string
	}{
		{"cifar10 with names", 1, 10, c10, "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n", 15, 3, "cifar10"},
		{"cifar100 numeric names", 2, 100, []string{"train.bin", "test.bin"}, "", 3, 3, "cifar100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeCIFAR(t, dir, tt.labelBytes, tt.classes, tt.files, 3)
			if tt.names != "" {
				os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte(tt.names), 0o600)
			}
			src, err := OpenCIFAR(dir)
			if err != nil {
				t.Fatal(err)
			}
			if src.Name() != tt.wantName || len(src.Classes()) != tt.classes {
				t.Fatalf("name %s, %d classes", src.Name(), len(src.Classes()))
			}
			all := collect(t, src, 0)
			var train, test int
			for _, s := range all {
				if s.Split == "train" {
					train++
				} else {
					test++
				}
			}
			if train != tt.wantTrain || test != tt.wantTest {
				t.Fatalf("train %d test %d", train, test)
			}
			s := all[2]
			px := s.Image.(*image.NRGBA).NRGBAAt(5, 7)
			if s.Label != 2 || s.ID != "00002" || px != (color.NRGBA{2, 4, 6, 255}) {
				t.Fatalf("sample 2: label %d id %s pixel %v", s.Label, s.ID, px)
			}
			if got := collect(t, src, 4); len(got) != min(4, tt.wantTrain)+min(4, tt.wantTest) {
				t.Fatalf("limit 4 gave %d", len(got))
			}
		})
	}
}

func TestCIFARErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenCIFAR(dir); !errors.Is(err, ErrSource) {
		t.Fatalf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "test_batch.bin"), []byte{1, 2, 3}, 0o600)
	if _, err := OpenCIFAR(dir); !errors.Is(err, ErrSource) {
		t.Fatalf("missing train batches: %v", err)
	}
	dir = t.TempDir()
	writeCIFAR(t, dir, 2, 100, []string{"train.bin", "test.bin"}, 2)
	os.WriteFile(filepath.Join(dir, "test.bin"), make([]byte, 100), 0o600)
	src, err := OpenCIFAR(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Samples(t.Context(), ReadOptions{}, func(Sample) error { return nil }); !errors.Is(err, ErrSource) {
		t.Fatalf("bad size: %v", err)
	}
}

// writePNG writes a w x h image of one colour.
func writePNG(t *testing.T, path string, w, h int, c color.Color) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o700)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		img.Set(i%w, i/w, c)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestImageFolder(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"train/cat/a.png", "train/cat/b.png", "train/cat/c.png", "train/dog/x.png", "val/bird/z.png"} {
		writePNG(t, filepath.Join(dir, p), 4, 3, color.NRGBA{200, 100, 50, 255})
	}
	os.WriteFile(filepath.Join(dir, "train/cat/README.txt"), []byte("ignored"), 0o600)
	src, err := OpenImageFolder(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.Classes(), []string{"bird", "cat", "dog"}) || src.Channels() != 3 {
		t.Fatalf("classes %v", src.Classes())
	}
	var got []string
	for _, s := range collect(t, src, 0) {
		got = append(got, s.Split+"/"+src.Classes()[s.Label]+"/"+s.ID)
	}
	want := []string{"train/cat/a", "train/cat/b", "train/cat/c", "train/dog/x", "val/bird/z"}
	if !slices.Equal(got, want) {
		t.Fatalf("samples %v, want %v", got, want)
	}
	got = got[:0]
	for _, s := range collect(t, src, 2) {
		got = append(got, s.Split+"/"+s.ID)
	}
	// Select with seed 1: cat's share is 1.5 and dog's 0.5, the tie goes
	// to dog.
	if want := []string{"train/b", "train/x", "val/z"}; !slices.Equal(got, want) {
		t.Fatalf("limit 2 = %v, want %v", got, want)
	}
	gray, err := OpenImageFolder(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := collect(t, gray, 1)[0].Image.(*image.Gray); !ok {
		t.Fatal("channels 1 did not give *image.Gray")
	}
}

func TestImageFolderErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
	}{
		{"no splits", nil},
		{"bad channels", map[string][]byte{"train/cat/a.png": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, b := range tt.files {
				path := filepath.Join(dir, p)
				if b == nil {
					writePNG(t, path, 2, 2, color.White)
				} else {
					os.MkdirAll(filepath.Dir(path), 0o700)
					os.WriteFile(path, b, 0o600)
				}
			}
			channels := 3
			if tt.name == "bad channels" {
				channels = 2
			}
			src, err := OpenImageFolder(dir, channels)
			if err == nil {
				err = src.Samples(t.Context(), ReadOptions{}, func(Sample) error { return nil })
			}
			if !errors.Is(err, ErrSource) {
				t.Fatalf("err = %v, want ErrSource", err)
			}
		})
	}
}

func TestOpenUnknownSource(t *testing.T) {
	if _, err := Open("tfrecord", t.TempDir(), "", 3); err == nil || !strings.Contains(err.Error(), `"tfrecord"`) {
		t.Fatalf("Open of an unknown kind: %v", err)
	}
	if _, err := Open("cifar10", t.TempDir(), "", 3); err == nil {
		t.Fatal("Open of an empty folder as cifar10 succeeded")
	}
	if _, err := Open(SourceS3, "photos", "", 3); err == nil || !strings.Contains(err.Error(), "Index") {
		t.Fatalf("Open of source s3: %v, want a pointer to Index", err)
	}
}
