package engine

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/supflow/supflow/model"
)

// formatConfig is the small model of the testdata/v1_*.safetensors
// checkpoints.
func formatConfig(dtype string) Config {
	cfg := tinyConfig(MethodSupCon, dtype)
	cfg.Model.Config = model.Config{Widths: []int{2, 2, 4, 4}, Blocks: []int{1, 1, 1, 1}, InChannels: 1, FeatDim: 4}
	return cfg
}

// formatExtra is the caller metadata the testdata checkpoints carry.
var formatExtra = map[string]string{"git_commit": "ccb07ad"}

// TestLoadsFormatV1 loads checkpoints that the trainer wrote at commit
// ccb07ad (format version 1, three steps, epoch 2) and saves them again: the
// bytes must not change, so files written before any later refactor keep
// loading and look the same to PyTorch.
func TestLoadsFormatV1(t *testing.T) {
	for _, dt := range []string{"float32", "float64"} {
		t.Run(dt, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "v1_"+dt+".safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			tr, err := New(formatConfig(dt))
			if err != nil {
				t.Fatal(err)
			}
			meta, err := tr.Load(want)
			if err != nil {
				t.Fatal(err)
			}
			if meta.Step != 3 || meta.Epoch != 2 || meta.DType != dt || tr.Steps() != 3 {
				t.Fatalf("meta %+v, steps %d", meta, tr.Steps())
			}
			got, err := tr.Save(meta.Epoch, meta.Extra)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("re-saved checkpoint differs from the version 1 file (%d vs %d bytes)", len(got), len(want))
			}
			r := rand.New(rand.NewPCG(1, 1))
			if _, err := tr.Step(context.Background(), synthBatch(r, 4, 2)); err != nil {
				t.Errorf("step after loading: %v", err)
			}
		})
	}
}
