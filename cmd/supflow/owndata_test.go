package main

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/supflow/supflow/internal/clustertest"
)

// ownTree writes a small RGB ImageFolder: classes red, green and blue of
// 48x36 JPEG photos (the class's channel bright, noise on all), 16 train
// and 4 test images each, plus a text file named .jpg and a .DS_Store.
func ownTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	x := uint32(7)
	for split, n := range map[string]int{"train": 16, "test": 4} {
		for c, class := range []string{"red", "green", "blue"} {
			if err := os.MkdirAll(filepath.Join(dir, split, class), 0o700); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				img := image.NewNRGBA(image.Rect(0, 0, 48, 36))
				for p := 0; p < 48*36; p++ {
					var px [3]uint8
					for k := range px {
						x = x*1664525 + 1013904223
						px[k] = uint8(x >> 26) // noise in 0..63
					}
					px[c] += 150 + uint8(p%48)
					img.Set(p%48, p/48, color.NRGBA{px[0], px[1], px[2], 255})
				}
				var b bytes.Buffer
				if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, split, class, fmt.Sprintf("%s%02d.jpg", class, i)), b.Bytes(), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	os.WriteFile(filepath.Join(dir, "train/red/notes.jpg"), []byte("not a photo"), 0o600)
	os.WriteFile(filepath.Join(dir, "train/.DS_Store"), []byte{0}, 0o600)
	return dir
}

// TestIntegrationOwnDataSmallRGB runs README's "Using it on your own data"
// as written, with configs/small-rgb.yaml: `supflow ingest` of a small RGB
// ImageFolder (holding a bad file and a stray one, which it reports and
// leaves out), then `supflow run`, shortened to two epochs; the run trains
// every train image in RGB and ends with the RESULT line. Everything is
// embedded, as the preset says.
func TestIntegrationOwnDataSmallRGB(t *testing.T) {
	bin := clustertest.Binary(t)
	preset, err := filepath.Abs("../../configs/small-rgb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"supflow ingest --config configs/small-rgb.yaml --set dataset.path=/data/tree",
		"supflow run    --config configs/small-rgb.yaml --set dataset.path=/data/tree",
	} {
		if !strings.Contains(string(readme), line) {
			t.Fatalf("README no longer says %q: this test runs it", line)
		}
	}
	tree, work := ownTree(t), t.TempDir()
	supflow := func(args ...string) (stdout, stderr string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append(args, "--config", preset, "--set", "dataset.path="+tree,
			"--set", "run.work_dir="+work)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("supflow %v: %v\n%s\n%s", args, err, out.String(), clustertest.Tail(errb.String(), 3000))
		}
		return out.String(), errb.String()
	}

	out, _ := supflow("ingest")
	for _, want := range []string{
		"data set s3://supflow/small-rgb from imagefolder: 60 images (60 written, 0 already stored), 0 refused, 2 left out: 1 hidden, 1 undecodable",
		"hidden train/.DS_Store",
		"undecodable train/red/notes.jpg",
		"report: s3://supflow/small-rgb/ingest-report.json",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ingest's summary lacks %q:\n%s", want, out)
		}
	}

	out, logs := supflow("run", "--set", "train.epochs=2", "--set", "train.warm_epochs=1", "--set", "train.knn_every=1",
		"--set", "train.checkpoint_every=1", "--set", "evaluate.epochs=2")
	if !regexp.MustCompile(`msg=ingested (?:\S+ )*?unchanged=true `).MatchString(logs) {
		t.Errorf("run ingested again instead of finding the tree unchanged:\n%s", clustertest.Tail(logs, 3000))
	}
	for e := 1; e <= 2; e++ {
		if s := clustertest.EpochStats(logs)[e]; s.Samples != 48 || s.Dropped != 0 {
			t.Errorf("epoch %d: %d samples trained, %d dropped; want all 48 train images", e, s.Samples, s.Dropped)
		}
	}
	if !regexp.MustCompile(`RESULT linear_top1=[0-9.]+ knn_top1=[0-9.]+`).MatchString(out) {
		t.Errorf("no RESULT line:\n%s", out)
	}

	// drop_last with a batch larger than the split would train nothing:
	// refused before anything starts.
	cmd := exec.CommandContext(t.Context(), bin, "run", "--config", preset, "--set", "dataset.path="+tree, "--set", "run.work_dir="+work,
		"--set", "run.id=nothing", "--set", "train.drop_last=true", "--set", "train.batch_size=64")
	msg, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(msg), `train.drop_last with train.batch_size 64 would never step: the "train" split has 48 images`) {
		t.Errorf("drop_last with batch 64 of 48 images: %v\n%s", err, clustertest.Tail(string(msg), 2000))
	}
}
