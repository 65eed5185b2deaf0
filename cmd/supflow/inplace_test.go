package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/store"
)

// inPlaceImage encodes an 8x8 RGB image whose colours depend on its class,
// as PNG or JPEG.
func inPlaceImage(t *testing.T, class, i int, jpg bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			v := uint8(x*20 + y*3 + i)
			if class == 1 {
				img.Set(x, y, color.NRGBA{255 - v, v / 2, 40, 255})
			} else {
				img.Set(x, y, color.NRGBA{v / 2, 40, 255 - v, 255})
			}
		}
	}
	var b bytes.Buffer
	var err error
	if jpg {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
	} else {
		err = png.Encode(&b, img)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDecodeInPlaceStaysInDataSet: with source s3 the images lie under
// dataset.path, which lies under dataset.prefix, so decode as cmd builds it
// keeps its one rule (keys under dataset.prefix): it decodes an indexed
// original, and refuses unread, as permanent, a task for a key outside the
// data set, even one that exists.
func TestDecodeInPlaceStaysInDataSet(t *testing.T) {
	cl := storetest.New(t)
	img := inPlaceImage(t, 0, 0, false)
	for _, key := range []string{"own/photos/train/a/1.png", "photos/train/a/1.png", "ownX/photos/train/a/1.png", "runs/r/x.png"} {
		if err := cl.Put(t.Context(), key, img, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load("", func(string) (string, bool) { return "", false },
		[]string{"dataset.source=s3", "dataset.prefix=own", "dataset.path=own/photos", "decode.cache=false"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := newDecoder(cfg, cl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Handle(t.Context(), messages.DecodeTask{RunID: "r", SampleID: 1, Key: "own/photos/train/a/1.png"}); err != nil {
		t.Fatalf("indexed original: %v", err)
	}
	for _, key := range []string{"photos/train/a/1.png", "ownX/photos/train/a/1.png", "runs/r/x.png", "own/../photos/train/a/1.png"} {
		_, err := st.Handle(t.Context(), messages.DecodeTask{RunID: "r", SampleID: 2, Key: key})
		if !errors.Is(err, messages.ErrPermanent) || !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("task for %s: %v, want a permanent invalid-key refusal", key, err)
		}
	}
}

// TestIntegrationRunInPlace uploads a small ImageFolder tree to MinIO as it
// is (PNG and JPEG, with a text file, a hidden file and a file nested too
// deep) and runs `supflow run` with dataset.source s3: the index points the
// manifest at the originals (nothing is copied), decode reads them, the
// epoch trains every indexed image, and a second ingest finds the listing
// unchanged and reads nothing.
func TestIntegrationRunInPlace(t *testing.T) {
	c := clustertest.New(t, `
dataset: {name: own, source: s3, prefix: own, path: own/photos}
model: {widths: [4, 8, 8, 16], blocks: [1, 1, 1, 1], feat_dim: 32}
augment: {size: 8, flip_p: 0}
train: {epochs: 1, batch_size: 8, knn_every: 0}
evaluate: {epochs: 2, knn_k: 5}
`)
	cl := c.Store()
	ctx := context.Background()
	if err := cl.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	var originals []string
	objs := map[string][]byte{
		"own/photos/train/a/notes.txt":     []byte("not an image"),
		"own/photos/train/b/.hidden.png":   inPlaceImage(t, 1, 99, false),
		"own/photos/train/b/extra/x.png":   inPlaceImage(t, 1, 98, false),
		"own/photos/README.md":             []byte("my photos"),
		"elsewhere/train/a/not-ours.png":   inPlaceImage(t, 0, 97, false),
		"own/photosX/train/a/not-ours.png": inPlaceImage(t, 0, 96, false),
	}
	for split, n := range map[string]int{"train": 12, "test": 4} {
		for class, name := range []string{"a", "b"} {
			for i := range n {
				jpg := i%2 == 1
				ext := ".png"
				if jpg {
					ext = ".JPG"
				}
				key := fmt.Sprintf("own/photos/%s/%s/%02d%s", split, name, i, ext)
				objs[key] = inPlaceImage(t, class, i, jpg)
				originals = append(originals, key)
			}
		}
	}
	for k, b := range objs {
		if err := cl.Put(ctx, k, b, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	run := c.Start("run", "run")
	c.Wait(run, 4*time.Minute)
	out := run.Output()
	if !regexp.MustCompile(`msg=indexed (?:\S+ )*?unchanged=false images=32 refused=0 sampled=24`).MatchString(out) {
		t.Errorf("no index of 32 images (24 sampled) in the log")
	}
	if s := clustertest.EpochStats(out)[1]; s.Samples != 24 || s.Dropped != 0 {
		t.Errorf("epoch 1: %d samples trained, %d dropped; want all 24 train images", s.Samples, s.Dropped)
	}
	if !strings.Contains(out, "RESULT linear_top1=") {
		t.Errorf("no RESULT line")
	}

	// Nothing was copied: under the data set prefix there are the
	// originals, what was there besides them, and the four data set files.
	var keys []string
	if err := cl.Walk(ctx, "own/", func(o store.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(originals), "own/classes.json", "own/info.json", "own/ingest-report.json", "own/manifest.jsonl")
	for k := range objs {
		if strings.HasPrefix(k, "own/") {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(keys, want) {
		t.Errorf("objects under own/:\n %v\nwant\n %v", keys, want)
	}
	d, err := dataset.Load(ctx, cl, "own")
	if err != nil {
		t.Fatal(err)
	}
	var indexed []string
	for _, e := range d.Entries {
		indexed = append(indexed, e.Key)
	}
	slices.Sort(indexed)
	slices.Sort(originals)
	if !slices.Equal(indexed, originals) || !slices.Equal(d.Classes, []string{"a", "b"}) || d.Info.Source != "s3" || d.Info.Sampled != 24 {
		t.Errorf("manifest %v classes %v info %+v", indexed, d.Classes, d.Info)
	}

	// A second run, of another run id, finds the listing unchanged: it
	// does not index again.
	again := c.StartEnv("run again", []string{"SUPFLOW_RUN_ID=again"}, "run")
	c.Wait(again, 4*time.Minute)
	if out := again.Output(); !regexp.MustCompile(`msg=indexed (?:\S+ )*?unchanged=true images=32 `).MatchString(out) ||
		!strings.Contains(out, `msg="index unchanged"`) {
		t.Errorf("the second run indexed again:\n%s", clustertest.Tail(out, 3000))
	}

	// So does ingest, which prints the stored report.
	cmd := c.Command("ingest")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("second ingest: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{
		"data set s3://itest/own: images under s3://itest/own/photos, layout <split>/<class>/<file>",
		"unchanged since ",
		"listed 36 objects: 32 images indexed, 0 refused, skipped 2 not images by extension, 1 hidden, 1 outside the layout, 0 invalid keys",
		"report: s3://itest/own/ingest-report.json",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("second ingest's report does not say %q:\n%s", want, stdout.String())
		}
	}
	t.Logf("second ingest:\n%s", stdout.String())
	if !regexp.MustCompile(`(?m)^train +a +12$`).MatchString(stdout.String()) {
		t.Errorf("no count of train/a in:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), `msg="index unchanged"`) {
		t.Errorf("second ingest did not log an unchanged index:\n%s", stderr.String())
	}
}
