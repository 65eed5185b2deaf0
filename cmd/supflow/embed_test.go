package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/internal/torchref"
	"github.com/supflow/supflow/npy"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/safetensors"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/store"
)

// TestIntegrationEmbedReproducesKNN: after a run (its linear evaluation
// by SupContrast's protocol, which report.json records), `supflow embed` of the
// train and test splits gives the features the evaluation scored: kNN on
// them by the documented rule (k, temperature) reproduces the run's
// knn_top1; --head adds the projections (feat_dim wide). `supflow export`
// writes the encoder without head or momentum.
func TestIntegrationEmbedReproducesKNN(t *testing.T) {
	c := clustertest.New(t, `
dataset: {name: own, source: s3, prefix: own, path: own/photos}
decode: {gray: false}
model: {widths: [4, 8, 8, 16], blocks: [1, 1, 1, 1], feat_dim: 32}
augment: {size: 8, flip_p: 0}
train: {epochs: 1, batch_size: 8, knn_every: 0}
evaluate: {epochs: 2, knn_k: 5, protocol: supcontrast}
`)
	cl := c.Store()
	ctx := context.Background()
	if err := cl.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	images := map[string][]byte{}
	for split, n := range map[string]int{"train": 12, "test": 5} {
		for class, name := range []string{"a", "b", "c"} {
			for i := range n {
				key := fmt.Sprintf("own/photos/%s/%s/%02d.png", split, name, i)
				images[key] = inPlaceImage(t, class%2, i+class, false)
				if err := cl.Put(ctx, key, images[key], store.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	run := c.Start("run", "run")
	c.Wait(run, 4*time.Minute)
	m := regexp.MustCompile(`RESULT linear_top1=\S+ knn_top1=(\S+) report=(\S+)`).FindStringSubmatch(run.Output())
	if m == nil {
		t.Fatalf("no RESULT line:\n%s", clustertest.Tail(run.Output(), 3000))
	}
	// The linear classifier was trained by SupContrast's protocol, and
	// report.json says so.
	var rep struct {
		Linear struct {
			Protocol string `json:"protocol"`
		} `json:"linear"`
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(m[2]), "report.json")); err != nil || json.Unmarshal(b, &rep) != nil || rep.Linear.Protocol != "supcontrast" {
		t.Errorf("report.json's linear protocol %q (%v)", rep.Linear.Protocol, err)
	}
	sets := map[string]probe.Set{}
	for _, split := range []string{"train", "test"} {
		dir := filepath.Join(c.Dir(), "emb-"+split)
		args := []string{"embed", "--split", split, "--out", dir}
		if split == "test" {
			args = append(args, "--head")
		}
		if out, err := c.Command(args...).CombinedOutput(); err != nil {
			t.Fatalf("embed %s: %v\n%s", split, err, out)
		}
		f, err := safetensors.ReadFile(filepath.Join(dir, evaluate.EmbeddingFile))
		if err != nil {
			t.Fatal(err)
		}
		x, shape, err := f.Float32s("features")
		if err != nil {
			t.Fatal(err)
		}
		labels, _, err := f.Float64s("labels")
		if err != nil {
			t.Fatal(err)
		}
		s := probe.Set{X: x, Dim: shape[1], Classes: 3}
		for _, l := range labels {
			s.Labels = append(s.Labels, int(l))
		}
		if s.Len() != 3*map[string]int{"train": 12, "test": 5}[split] || s.Dim != 16 || f.Metadata["split"] != split {
			t.Fatalf("%s: %d rows of %d, metadata %v", split, s.Len(), s.Dim, f.Metadata)
		}
		sets[split] = s
		if _, pshape, err := f.Float32s("projections"); (split == "test") != (err == nil) || err == nil && pshape[1] != 32 {
			t.Errorf("%s: projections %v (%v)", split, pshape, err)
		}
	}
	knn, err := probe.KNN(ctx, probe.KNNConfig{K: 5, Temperature: 0.1}, sets["train"], sets["test"])
	if err != nil {
		t.Fatal(err)
	}
	if got := strconv.FormatFloat(knn.Top1, 'f', 4, 64); got != m[1] {
		t.Errorf("kNN on the embeddings: top-1 %s, the run's %s", got, m[1])
	}

	file := filepath.Join(c.Dir(), "encoder.safetensors")
	if out, err := c.Command("export", "--out", file).CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	f, err := safetensors.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get("conv1.weight"); err != nil || f.Metadata["supflow.export"] != "encoder" {
		t.Errorf("export: %v, metadata %v", err, f.Metadata)
	}
	for _, name := range f.Names() {
		if regexp.MustCompile(`^(head|optimizer|encoder)\.`).MatchString(name) {
			t.Errorf("export holds %s", name)
		}
	}
	// PyTorch, given the export and the documented preprocessing,
	// computes the test split's features as supflow embed wrote them.
	d, err := dataset.Load(ctx, cl, "own")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.Dir(), "emb-test")
	var keys []string
	if b, err := os.ReadFile(filepath.Join(dir, evaluate.KeysJSON)); err != nil || json.Unmarshal(b, &keys) != nil {
		t.Fatalf("keys.json: %v", err)
	}
	spec := map[string]any{"encoder": file, "features": filepath.Join(dir, evaluate.FeaturesNPY), "mean": d.Info.Mean, "std": d.Info.Std}
	// The images' decoded RGB values, row by row (what any PNG decoder
	// gives), as float32 for the script.
	var px []float32
	for _, k := range keys {
		im, err := png.Decode(bytes.NewReader(images[k]))
		if err != nil {
			t.Fatal(err)
		}
		b := im.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, _ := im.At(x, y).RGBA()
				px = append(px, float32(r>>8), float32(g>>8), float32(bl>>8))
			}
		}
	}
	spec["pixels"] = filepath.Join(c.Dir(), "pixels.npy")
	if err := npy.WriteFile(spec["pixels"].(string), []int{len(keys), 8, 8, 3}, px); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(c.Dir(), "spec.json")
	if b, err := json.Marshal(spec); err != nil || os.WriteFile(specPath, b, 0o600) != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "embed_in_torch.py"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Rows, Dim  int
		MaxAbsDiff float64 `json:"max_abs_diff"`
		MaxAbs     float64 `json:"max_abs"`
	}
	out := torchref.Run(t, script, specPath)
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("script output %q: %v", out, err)
	}
	t.Logf("PyTorch's features of %d test images: %d wide, max |difference| %.3g (max |feature| %.3g)", res.Rows, res.Dim, res.MaxAbsDiff, res.MaxAbs)
	if res.Rows != 15 || res.Dim != 16 || res.MaxAbsDiff > 1e-4*max(1, res.MaxAbs) {
		t.Errorf("PyTorch's features differ: %+v", res)
	}
}

// TestEmbedAndExportFlags: a negative --limit, export without --out and a
// bad --checkpoint key are usage errors, refused before any connection.
func TestEmbedAndExportFlags(t *testing.T) {
	external := []string{"--config", "", "--set", "store.embedded=false", "--set", "store.endpoint=127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"embed", "--limit", "-1"}, "--limit -1: want a count >= 0"},
		{[]string{"export"}, "--out: the file to write is required"},
		{[]string{"export", "--out", "x", "--checkpoint", "runs/../x"}, "--checkpoint:"},
		{[]string{"embed", "--checkpoint", "/abs"}, "--checkpoint:"},
	} {
		code, _, stderr := runCLI(t.Context(), append(tc.args, external...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q\n%s", tc.args, code, exitUsage, tc.want, stderr)
		}
	}
}
