package dataset

import (
	"bytes"
	"context"
	"errors"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/store"
)

func TestIngestCIFARStatsAndIdempotence(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR(t, dir, 2, 100, []string{"train.bin", "test.bin"}, 4)
	src, err := OpenCIFAR(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := newMemBucket()
	ctx := t.Context()
	rep, err := Ingest(ctx, b, src, Options{Prefix: "c100/", Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written != 8 || rep.Skipped != 0 || rep.Info.Counts["train"] != 4 || rep.Info.Counts["test"] != 4 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Entries[1].Key != "c100/train/1/00001.png" {
		t.Fatalf("key %s", rep.Entries[1].Key)
	}
	// Train pixels are i, 2i, 3i for i = 0..3 in channels R, G, B.
	for c := range 3 {
		var vals []float64
		for i := range 4 {
			vals = append(vals, float64((c+1)*i)/255)
		}
		mean, std := meanStdOf(vals)
		if math.Abs(rep.Info.Mean[c]-mean) > 1e-12 || math.Abs(rep.Info.Std[c]-std) > 1e-9 {
			t.Errorf("channel %d mean/std %v/%v, want %v/%v", c, rep.Info.Mean[c], rep.Info.Std[c], mean, std)
		}
	}
	if rep.Info.Height != 32 || rep.Info.Width != 32 || rep.Info.Channels != 3 || rep.Info.Classes != 100 || rep.Info.StatsSplit != "train" {
		t.Fatalf("info %+v", rep.Info)
	}
	before := map[string][]byte{}
	for _, k := range []string{ManifestKey("c100"), ClassesKey("c100"), InfoKey("c100")} {
		before[k] = b.objs[k]
	}
	// The CIFAR files are unchanged: a re-run reads none (TestIngestUnchanged);
	// forced, it encodes and compares every image and uploads none.
	putsBefore := b.puts
	if again, err := Ingest(ctx, b, src, Options{Prefix: "c100"}); err != nil || !again.Unchanged || b.puts != putsBefore {
		t.Fatalf("unforced re-run: unchanged %v, %d puts, %v", again.Unchanged, b.puts-putsBefore, err)
	}
	again, err := Ingest(ctx, b, src, Options{Prefix: "c100", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Written != 0 || again.Skipped != 8 || b.puts-putsBefore != 4 { // the data set's three files and the report
		t.Fatalf("re-run wrote %d, skipped %d, puts %d", again.Written, again.Skipped, b.puts-putsBefore)
	}
	for k, v := range before {
		if !bytes.Equal(b.objs[k], v) {
			t.Fatalf("%s changed on re-run", k)
		}
	}
	// A changed object (different sha256) is uploaded again.
	b.meta[rep.Entries[0].Key]["sha256"] = strings.Repeat("0", 64)
	third, err := Ingest(ctx, b, src, Options{Prefix: "c100", Force: true})
	if err != nil || third.Written != 1 {
		t.Fatalf("third run wrote %d, %v", third.Written, err)
	}

	d, err := Load(ctx, b, "c100")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Entries) != 8 || len(d.Classes) != 100 || len(d.Split("test")) != 4 || d.Info.Mean[0] != rep.Info.Mean[0] {
		t.Fatalf("Load = %d entries %d classes", len(d.Entries), len(d.Classes))
	}

	missing, err := Missing(ctx, b, d.Entries, 2)
	if err != nil || len(missing) != 0 {
		t.Fatalf("Missing = %v, %v", missing, err)
	}
	b.delete(d.Entries[5].Key)
	b.delete(d.Entries[2].Key)
	missing, err = Missing(ctx, b, d.Entries, 2)
	if err != nil || len(missing) != 2 || missing[0] != d.Entries[2] || missing[1] != d.Entries[5] {
		t.Fatalf("Missing = %v, %v", missing, err)
	}
}

// TestIngestUnchanged: a re-run with the same source files and options
// reads no image and writes nothing, returning the stored report; a file
// touched, added or removed, another option, or a data set whose files
// are not all of the same ingest (one interrupted after writing info.json)
// ingests again.
func TestIngestUnchanged(t *testing.T) {
	ctx := t.Context()
	setup := func(t *testing.T) (string, *memBucket, Options, Report) {
		dir := t.TempDir()
		for i, p := range []string{"train/a/1.png", "train/a/2.png", "train/b/3.png", "test/a/4.png", "test/b/5.png"} {
			v := uint8(40 * i)
			writePNG(t, filepath.Join(dir, p), 4, 4, color.NRGBA{v, 255 - v, v / 2, 255})
		}
		src, err := OpenImageFolder(dir, 3)
		if err != nil {
			t.Fatal(err)
		}
		b, opts := newMemBucket(), Options{Prefix: "f"}
		rep, err := Ingest(ctx, b, src, opts)
		if err != nil || rep.Unchanged || rep.Written != 5 || rep.Fingerprint == "" || rep.Info.Fingerprint != rep.Fingerprint {
			t.Fatalf("first ingest: %+v, %v", rep, err)
		}
		return dir, b, opts, rep
	}
	ingest := func(t *testing.T, dir string, b *memBucket, opts Options) Report {
		src, err := OpenImageFolder(dir, 3)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Ingest(ctx, b, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	t.Run("unchanged", func(t *testing.T) {
		dir, b, opts, first := setup(t)
		puts := b.puts
		rep := ingest(t, dir, b, opts)
		if !rep.Unchanged || b.puts != puts || rep.Entries != nil || rep.Images != 5 || rep.Written != 5 ||
			!rep.Ingested.Equal(first.Ingested) || rep.Info.Mean[0] != first.Info.Mean[0] {
			t.Fatalf("re-run: %+v, %d puts", rep, b.puts-puts)
		}
		var sum strings.Builder
		rep.WriteSummary(&sum, "bk")
		if !strings.Contains(sum.String(), "5 images (as ingested at "+first.Ingested.Format(time.RFC3339)+": 5 written") ||
			!strings.Contains(sum.String(), "nothing read or written this time") {
			t.Fatalf("summary:\n%s", sum.String())
		}
	})
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string, b *memBucket, opts *Options)
	}{
		{"touched", func(t *testing.T, dir string, _ *memBucket, _ *Options) {
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "train/a/1.png"), future, future); err != nil {
				t.Fatal(err)
			}
		}},
		{"added", func(t *testing.T, dir string, _ *memBucket, _ *Options) {
			writePNG(t, filepath.Join(dir, "train/b/6.png"), 4, 4, color.NRGBA{9, 9, 9, 255})
		}},
		{"removed", func(t *testing.T, dir string, _ *memBucket, _ *Options) {
			if err := os.Remove(filepath.Join(dir, "test/b/5.png")); err != nil {
				t.Fatal(err)
			}
		}},
		{"stray file", func(t *testing.T, dir string, _ *memBucket, _ *Options) {
			if err := os.WriteFile(filepath.Join(dir, "train/a/notes.txt"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"option", func(_ *testing.T, _ string, _ *memBucket, opts *Options) { opts.Format = FormatJPEG }},
		{"limit", func(_ *testing.T, _ string, _ *memBucket, opts *Options) {
			opts.Limit = Selection{PerSplit: map[string]int{"train": 2}}
		}},
		{"forced", func(_ *testing.T, _ string, _ *memBucket, opts *Options) { opts.Force = true }},
		{"report gone", func(_ *testing.T, _ string, b *memBucket, _ *Options) { b.delete(ReportKey("f")) }},
		{"info of another ingest", func(t *testing.T, _ string, b *memBucket, _ *Options) {
			info := strings.Replace(string(b.objs[InfoKey("f")]), `"fingerprint": "`, `"fingerprint": "0`, 1)
			if info == string(b.objs[InfoKey("f")]) {
				t.Fatal("no fingerprint in info.json")
			}
			b.objs[InfoKey("f")] = []byte(info)
		}},
		{"manifest gone", func(_ *testing.T, _ string, b *memBucket, _ *Options) { b.delete(ManifestKey("f")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, b, opts, _ := setup(t)
			tc.change(t, dir, b, &opts)
			rep := ingest(t, dir, b, opts)
			if rep.Unchanged || len(rep.Entries) == 0 {
				t.Fatalf("re-run after the change: unchanged %v, %d entries", rep.Unchanged, len(rep.Entries))
			}
			if _, err := Load(ctx, b, "f"); err != nil {
				t.Fatalf("Load after the re-run: %v", err)
			}
		})
	}
}

func meanStdOf(v []float64) (float64, float64) {
	var s, ss float64
	for _, x := range v {
		s += x
	}
	m := s / float64(len(v))
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(v)))
}

// failingStat fails every Stat with a non-NotFound error.
type failingStat struct{ *memBucket }

func (failingStat) Stat(context.Context, string) (store.ObjectInfo, error) {
	return store.ObjectInfo{}, store.ErrAccessDenied
}

func TestIngestErrors(t *testing.T) {
	dir := t.TempDir()
	writeIDX(t, dir, "train", 5, 2, 2, false)
	writeIDX(t, dir, "t10k", 5, 2, 2, false)
	src, err := OpenIDX(dir, "tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    Bucket
		opts Options
		want error
	}{
		{"bad format", newMemBucket(), Options{Format: "gif"}, ErrSource},
		{"bad prefix", newMemBucket(), Options{Prefix: "../up"}, store.ErrInvalidKey},
		{"bad quality", newMemBucket(), Options{Format: FormatJPEG, JPEGQuality: 101}, ErrSource},
		{"stat fails", failingStat{newMemBucket()}, Options{}, store.ErrAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Ingest(t.Context(), tt.b, src, tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("Ingest = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Missing(t.Context(), failingStat{newMemBucket()}, []Entry{{Key: "a"}}, 0); !errors.Is(err, store.ErrAccessDenied) {
		t.Fatalf("Missing = %v", err)
	}
}

// TestIngestMNISTEmbedded ingests part of the real MNIST files into the
// embedded S3 endpoint as JPEG and PNG.
func TestIngestMNISTEmbedded(t *testing.T) {
	c, ctx := storetest.New(t), t.Context()
	src, err := OpenIDX(fixtures.MNISTDir(t), "mnist", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{FormatPNG, FormatJPEG} {
		rep, err := Ingest(ctx, c, src, Options{Prefix: "mnist-" + format, Format: format, Limit: Selection{PerSplit: map[string]int{"train": 200, "test": 200}}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Written != 400 || rep.Info.Height != 28 || rep.Info.Channels != 1 || len(rep.Info.Mean) != 1 {
			t.Fatalf("%s: report written %d info %+v", format, rep.Written, rep.Info)
		}
		// MNIST's well-known statistics are mean 0.1307, std 0.3081; a
		// 200-image sample lands near them.
		if math.Abs(rep.Info.Mean[0]-0.13) > 0.02 || math.Abs(rep.Info.Std[0]-0.31) > 0.02 {
			t.Errorf("%s: mean %v std %v", format, rep.Info.Mean, rep.Info.Std)
		}
		d, err := Load(ctx, c, "mnist-"+format)
		if err != nil {
			t.Fatal(err)
		}
		missing, err := Missing(ctx, c, d.Entries, 0)
		if err != nil || len(missing) != 0 {
			t.Fatalf("Missing = %d, %v", len(missing), err)
		}
		if got, err := c.Get(ctx, d.Entries[0].Key); err != nil || int64(len(got)) != d.Entries[0].Size {
			t.Fatalf("Get first image: %d bytes, %v", len(got), err)
		}
	}
	// The idx files are unchanged: a re-run reads none of them; forced, it
	// finds every image stored.
	opts := Options{Prefix: "mnist-png", Limit: Selection{PerSplit: map[string]int{"train": 200, "test": 200}}}
	rep, err := Ingest(ctx, c, src, opts)
	if err != nil || !rep.Unchanged || rep.Images != 400 {
		t.Fatalf("re-run: unchanged %v, %d images, %v", rep.Unchanged, rep.Images, err)
	}
	opts.Force = true
	rep, err = Ingest(ctx, c, src, opts)
	if err != nil || rep.Unchanged || rep.Skipped != 400 {
		t.Fatalf("forced re-run skipped %d, %v", rep.Skipped, err)
	}
}

// BenchmarkIngestMNIST10k ingests 10,000 MNIST images (5,000 per split)
// into the embedded endpoint, as PNG.
func BenchmarkIngestMNIST10k(b *testing.B) {
	src, err := OpenIDX(fixtures.MNISTDir(b), "mnist", nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		e, err := store.StartEmbedded(b.Context(), "")
		if err != nil {
			b.Fatal(err)
		}
		c, err := store.New(e.Config("mnist"))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.EnsureBucket(b.Context()); err != nil {
			b.Fatal(err)
		}
		rep, err := Ingest(b.Context(), c, src, Options{Limit: Selection{PerSplit: map[string]int{"train": 5000, "test": 5000}}})
		if err != nil || rep.Written != 10000 {
			b.Fatalf("wrote %d, %v", rep.Written, err)
		}
		e.Close()
	}
}
