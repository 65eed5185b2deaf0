package evaluate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/safetensors"
	"github.com/supflow/supflow/store"
)

// TestEmbedIsWhatTheProbesScore: Embed's rows are the features Extract
// hands the linear probe and kNN (evaluation and monitor), row for row,
// and each row names its sample; a corrupt sample is left out of both.
func TestEmbedIsWhatTheProbesScore(t *testing.T) {
	tasks := testTasks(20, "bad")
	tasks = append(tasks, testTasks(3)...) // ids 0-2 again, after the corrupt one
	e, err := Embed(t.Context(), cfg(), tasks, loader, &meanEncoder{}, false)
	if err != nil {
		t.Fatal(err)
	}
	set, skipped, err := Extract(t.Context(), cfg(), tasks, loader, &meanEncoder{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.Features, set.X) || e.Dim != set.Dim || e.Len() != set.Len() || e.Len() != 23 {
		t.Fatalf("embed %d rows of %d, probes %d rows of %d", e.Len(), e.Dim, set.Len(), set.Dim)
	}
	if len(skipped) != 1 || len(e.Skipped) != 1 || e.Skipped[0].Key != "bad" {
		t.Errorf("skipped %v and %v", skipped, e.Skipped)
	}
	for i := range e.Len() {
		src := tasks[i]
		if i >= 20 {
			src = tasks[i+1]
		}
		if e.IDs[i] != src.SampleID || e.Keys[i] != src.Key || e.Labels[i] != src.Label || int(e.Labels[i]) != set.Labels[i] {
			t.Errorf("row %d: id %d key %s label %d, want task %+v", i, e.IDs[i], e.Keys[i], e.Labels[i], src)
		}
	}
}

// TestEmbeddingWrite: the safetensors file and the .npy files hold the
// same rows, ids, labels and keys.
func TestEmbeddingWrite(t *testing.T) {
	e, err := Embed(t.Context(), cfg(), testTasks(9), loader, &meanEncoder{}, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := e.Write(dir, map[string]string{"checkpoint": "runs/r/checkpoints/last.safetensors"}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, EmbeddingFile))
	if err != nil {
		t.Fatal(err)
	}
	x, shape, err := f.Float32s("features")
	if err != nil || !slices.Equal(x, e.Features) || !slices.Equal(shape, []int{9, 2}) {
		t.Errorf("features %v %v (%v)", shape, x, err)
	}
	labels, _, _ := f.Float64s("labels")
	ids, _, _ := f.Float64s("sample_ids")
	for i := range 9 {
		if labels[i] != float64(e.Labels[i]) || ids[i] != float64(e.IDs[i]) {
			t.Errorf("row %d: label %v id %v", i, labels[i], ids[i])
		}
	}
	var keys []string
	if err := json.Unmarshal([]byte(f.Metadata["keys"]), &keys); err != nil || !slices.Equal(keys, e.Keys) {
		t.Errorf("keys %q (%v)", f.Metadata["keys"], err)
	}
	if f.Metadata["checkpoint"] != "runs/r/checkpoints/last.safetensors" {
		t.Errorf("metadata %v", f.Metadata)
	}
	b, err := os.ReadFile(filepath.Join(dir, KeysJSON))
	if err != nil || string(b) != f.Metadata["keys"] {
		t.Errorf("keys.json %q (%v)", b, err)
	}
	for _, name := range []string{FeaturesNPY, LabelsNPY, IDsNPY} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) < 128 || string(b[:6]) != "\x93NUMPY" {
			t.Errorf("%s: %d bytes (%v)", name, len(b), err)
		}
	}
}

// TestEmbedCheckpoint: the checkpoint is loaded from the bucket and the
// entries embedded as the evaluation's tasks; a missing checkpoint is a
// clear error.
func TestEmbedCheckpoint(t *testing.T) {
	st := storetest.New(t)
	ckpt := runs.Checkpoint("r", runs.Last)
	if err := st.Put(t.Context(), ckpt, []byte("weights"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	deps := Deps{Engine: &frozen{}, Load: loader, Store: st}
	e, meta, err := EmbedCheckpoint(t.Context(), cfg(), "r", ckpt, entries(10), false, deps)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Embed(t.Context(), cfg(), tasks("r", entries(10)), loader, &meanEncoder{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Epoch != 3 || !slices.Equal(e.Features, want.Features) || !slices.Equal(e.Keys, want.Keys) || !slices.Equal(e.IDs, want.IDs) {
		t.Errorf("epoch %d, %v %v", meta.Epoch, e.Keys, e.IDs)
	}
	if _, _, err := EmbedCheckpoint(t.Context(), cfg(), "r", runs.Checkpoint("r", "epoch-9"), entries(10), false, deps); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing checkpoint: %v", err)
	}

	// Shard members: their tasks name the shard (one "bad": a corrupt
	// member), the rows and the skipped the members.
	sharded := entries(4)
	for i := range sharded {
		sharded[i].Shard, sharded[i].Offset, sharded[i].Size = "s0", int64(512*(i+1)), 100
	}
	sharded[2].Shard = "bad"
	e, _, err = EmbedCheckpoint(t.Context(), cfg(), "r", ckpt, sharded, false, deps)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.Keys, []string{"k0", "k1", "k3"}) || len(e.Skipped) != 1 || e.Skipped[0].Key != "k2" {
		t.Errorf("rows %v, skipped %+v: want the members' names", e.Keys, e.Skipped)
	}
}

// projEncoder's projections are its features scaled by -1.
type projEncoder struct{ meanEncoder }

func (e *projEncoder) Project(ctx context.Context, im engine.Images) ([]float32, int, []float32, int, error) {
	f, d, err := e.Encode(ctx, im)
	p := make([]float32, len(f))
	for i, v := range f {
		p[i] = -v
	}
	return f, d, p, d, err
}

// TestEmbedWithHead: with head the projections come along, row for row,
// and are written; an encoder without a head is refused.
func TestEmbedWithHead(t *testing.T) {
	e, err := Embed(t.Context(), cfg(), testTasks(9, "bad"), loader, &projEncoder{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if e.ProjDim != 2 || len(e.Projections) != len(e.Features) || e.Len() != 9 {
		t.Fatalf("%d rows, projections %d of %d", e.Len(), len(e.Projections), e.ProjDim)
	}
	for i, v := range e.Projections {
		if v != -e.Features[i] {
			t.Fatalf("projection %d = %v, feature %v", i, v, e.Features[i])
		}
	}
	dir := t.TempDir()
	if err := e.Write(dir, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, EmbeddingFile))
	if err != nil {
		t.Fatal(err)
	}
	if p, shape, err := f.Float32s("projections"); err != nil || !slices.Equal(p, e.Projections) || !slices.Equal(shape, []int{9, 2}) {
		t.Errorf("projections %v %v (%v)", shape, p, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ProjNPY)); err != nil {
		t.Error(err)
	}
	if _, err := Embed(t.Context(), cfg(), testTasks(3), loader, &meanEncoder{}, true); !errors.Is(err, ErrInput) {
		t.Errorf("head of an encoder without one: %v", err)
	}
}

// TestEmbedLoadsInShardOrder: whatever order the tasks come in, each chunk
// the Loader is given holds them by shard and offset (so that shard
// neighbours share a fetch), and the rows come back in the order of the
// tasks, each the features of its own sample.
func TestEmbedLoadsInShardOrder(t *testing.T) {
	var tasks []messages.DecodeTask
	for i := range 30 {
		tasks = append(tasks, messages.DecodeTask{SampleID: uint64(i), Key: fmt.Sprintf("shard-%d", i%3), Offset: uint64(i/3) * 1024, Length: 100, Label: int32(i % 2)})
	}
	tasks = append(tasks, testTasks(4, "bad")...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(tasks), func(i, j int) { tasks[i], tasks[j] = tasks[j], tasks[i] })
	var chunks [][]messages.DecodeTask
	recording := Planned(func(chunk []messages.DecodeTask) []messages.DecodeTask {
		chunks = append(chunks, slices.Clone(chunk))
		return chunk
	}, loadImage)
	e, err := Embed(t.Context(), cfg(), tasks, recording, &meanEncoder{}, false)
	if err != nil {
		t.Fatal(err)
	}
	var loaded []messages.DecodeTask
	for _, c := range chunks {
		if !slices.IsSortedFunc(c, func(a, b messages.DecodeTask) int {
			return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.Offset, b.Offset))
		}) {
			t.Errorf("chunk out of shard order: %v", c)
		}
		loaded = append(loaded, c...)
	}
	if len(loaded) != len(tasks) || e.Len() != len(tasks)-1 || len(e.Skipped) != 1 {
		t.Fatalf("%d loaded, %d rows, %d skipped of %d tasks", len(loaded), e.Len(), len(e.Skipped), len(tasks))
	}
	row := 0
	for _, task := range tasks {
		if task.Key == "bad" {
			continue
		}
		alone, err := Embed(t.Context(), cfg(), []messages.DecodeTask{task}, loader, &meanEncoder{}, false)
		if err != nil {
			t.Fatal(err)
		}
		if e.IDs[row] != task.SampleID || e.Keys[row] != task.Key || !slices.Equal(e.Features[row*e.Dim:(row+1)*e.Dim], alone.Features) {
			t.Errorf("row %d: sample %d of %s, want %d of %s with features %v", row, e.IDs[row], e.Keys[row], task.SampleID, task.Key, alone.Features)
		}
		row++
	}
}
