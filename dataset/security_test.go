package dataset

import (
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/supflow/supflow/store"
)

func TestUnderPrefix(t *testing.T) {
	tests := []struct {
		key, prefix string
		ok          bool
	}{
		{"mnist/train/1/a.png", "mnist", true},
		{"mnist/train/1/a.png", "mnist/", true},
		{"a.png", "", true},
		{"data/sets/mnist/a.png", "data/sets", true},
		{"mnist/../etc/passwd", "mnist", false},
		{"../mnist/a.png", "mnist", false},
		{"/mnist/a.png", "mnist", false},
		{`mnist\..\a.png`, "mnist", false},
		{"mnist/a\x00.png", "mnist", false},
		{"mnist//a.png", "mnist", false},
		{"mnist/./a.png", "mnist", false},
		{"other/train/a.png", "mnist", false},
		{"mnistX/train/a.png", "mnist", false}, // a prefix of the name is not the prefix
		{"mnist", "mnist", false},
	}
	for _, tt := range tests {
		err := UnderPrefix(tt.key, tt.prefix)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, store.ErrInvalidKey)) {
			t.Errorf("UnderPrefix(%q, %q) = %v, want ok=%t", tt.key, tt.prefix, err, tt.ok)
		}
	}
}

// FuzzUnderPrefix checks the property the callers rely on: an accepted key,
// used as an object key or joined onto a local directory, stays inside the
// prefix.
func FuzzUnderPrefix(f *testing.F) {
	for _, k := range []string{"data/a.png", "data/../x", "data//x", "/data/x", `data\x`, "data/a/./b", "data/\x00"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if UnderPrefix(key, "data") != nil {
			return
		}
		if !filepath.IsLocal(key) || path.Clean(key) != key || !strings.HasPrefix(key, "data/") {
			t.Fatalf("accepted %q, which is not a clean local key under data/", key)
		}
		root := filepath.Join(string(filepath.Separator), "base")
		if p := filepath.Join(root, key); !strings.HasPrefix(p, filepath.Join(root, "data")+string(filepath.Separator)) {
			t.Fatalf("accepted %q, which maps to %s", key, p)
		}
	})
}

// TestLoadRefusesUnsafeKeys checks that a manifest line whose key could
// leave the data set prefix stops Load with an error naming the line and
// the key, so no stage ever sees it.
func TestLoadRefusesUnsafeKeys(t *testing.T) {
	entry := func(key string) string {
		b, _ := json.Marshal(map[string]any{"key": key, "label": 0, "class": "a", "split": "train", "size": 1, "sha256": sha})
		return string(b)
	}
	info, _ := json.Marshal(Info{Source: "test", Format: "png", Channels: 1, Mean: []float64{0.5}, Std: []float64{0.25}})
	for _, key := range []string{
		"ds/../../runs/x/checkpoints/last.safetensors",
		"/etc/passwd",
		`ds\train\a.png`,
		"ds/train/a\x00.png",
		"ds//a.png",
		"ds/train/./a.png",
		"other/train/a.png",
		"dsX/train/a.png",
	} {
		t.Run(key, func(t *testing.T) {
			b := newMemBucket()
			b.objs[ClassesKey("ds")] = []byte(`["a"]`)
			b.objs[InfoKey("ds")] = info
			b.objs[ManifestKey("ds")] = []byte(entry("ds/train/ok.png") + "\n" + entry(key) + "\n")
			_, err := Load(t.Context(), b, "ds")
			if !errors.Is(err, ErrManifest) || !errors.Is(err, store.ErrInvalidKey) {
				t.Fatalf("Load = %v, want ErrManifest and ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
				t.Errorf("error %q does not name line 2 and its key", err)
			}
		})
	}
}

// TestImageFolderSkipsLinksOutOfTheTree checks that neither a linked file
// nor a linked directory pointing outside the tree is read.
func TestImageFolderSkipsLinksOutOfTheTree(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	writePNG(t, filepath.Join(dir, "train/cat/a.png"), 2, 2, color.White)
	writePNG(t, filepath.Join(outside, "secret.png"), 2, 2, color.Black)
	writePNG(t, filepath.Join(outside, "cls/b.png"), 2, 2, color.Black)
	for link, target := range map[string]string{
		"train/cat/linked.png": filepath.Join(outside, "secret.png"),
		"train/dog":            filepath.Join(outside, "cls"),
		"test":                 outside,
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	src, err := OpenImageFolder(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	samples := collect(t, src, 0)
	if len(samples) != 1 || samples[0].ID != "a" || len(src.Classes()) != 1 {
		t.Fatalf("read %d samples, classes %v; want only train/cat/a", len(samples), src.Classes())
	}
}

// TestIngestSkipsUnsafeFileNames checks that file and directory names
// that would make unsafe keys are left out and reported, never uploaded,
// while the rest of the tree is ingested.
func TestIngestSkipsUnsafeFileNames(t *testing.T) {
	for _, name := range []string{`train/cat/a\b.png`, "train/cat/tab\there.png", "train/c\x01t/a.png"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writePNG(t, filepath.Join(dir, name), 2, 2, color.White)
			writePNG(t, filepath.Join(dir, "train/ok/b.png"), 2, 2, color.Gray{Y: 10})
			writePNG(t, filepath.Join(dir, "train/ok/c.png"), 2, 2, color.Gray{Y: 200})
			src, err := OpenImageFolder(dir, 1)
			if err != nil {
				t.Fatal(err)
			}
			b := newMemBucket()
			rep, err := Ingest(t.Context(), b, src, Options{Prefix: "ds"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Images != 2 || rep.LeftOut[SkipName] != 1 {
				t.Fatalf("%d images, left out %v; want 2 and one bad name", rep.Images, rep.LeftOut)
			}
			for key := range b.objs {
				if strings.Contains(key, "\\") || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 }) {
					t.Errorf("object %q written", key)
				}
			}
		})
	}
}
