package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/store"
)

// TestIntegrationRunSharded runs the pipeline on MNIST ingested into tar
// shards (dataset.shard_bytes) on MinIO: the bucket holds shards and the
// data set files, no loose image, and every training sample is read from
// its shard and trained exactly once.
func TestIntegrationRunSharded(t *testing.T) {
	c := clustertest.New(t, tinyModel+`
dataset: {limit_train: 120, limit_test: 60, shard_bytes: 8192}
decode: {gray: true}
train: {epochs: 1, batch_size: 20, knn_every: 0}
evaluate: {epochs: 2, knn_k: 5}
`)
	run := c.Start("run", "run")
	c.Wait(run, 4*time.Minute)
	out := run.Output()
	if s := clustertest.EpochStats(out)[1]; s.Samples != 120 || s.Dropped != 0 {
		t.Errorf("epoch 1: %d samples trained, %d dropped; want all 120", s.Samples, s.Dropped)
	}
	if !strings.Contains(out, "RESULT linear_top1=") {
		t.Errorf("no RESULT line")
	}
	ctx := context.Background()
	cl := c.Store()
	d, err := dataset.Load(ctx, cl, "mnist")
	if err != nil {
		t.Fatal(err)
	}
	shards := map[string]bool{}
	for _, e := range d.Entries {
		if !strings.HasPrefix(e.Shard, "mnist/shards/") {
			t.Fatalf("entry %s is not in a shard: %+v", e.Key, e)
		}
		shards[e.Shard] = true
	}
	var keys []string
	if err := cl.Walk(ctx, "mnist/", func(o store.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	// The shards, the manifest, info, classes and the ingest report.
	if len(keys) != len(shards)+4 || len(shards) < 4 {
		t.Errorf("%d objects under mnist/ for %d shards: %v", len(keys), len(shards), keys)
	}
}

// TestIntegrationRunShardedCache: with decode.cache on, ingest writes one
// decoded shard per data shard (and no per-sample entry), both epochs
// train every sample, and a re-ingest keeps the decoded shards.
func TestIntegrationRunShardedCache(t *testing.T) {
	c := clustertest.New(t, tinyModel+`
dataset: {limit_train: 120, limit_test: 60, shard_bytes: 8192}
decode: {gray: true, cache: true}
train: {epochs: 2, batch_size: 20, knn_every: 0}
evaluate: {epochs: 2, knn_k: 5}
`)
	run := c.Start("run", "run")
	c.Wait(run, 4*time.Minute)
	stats := clustertest.EpochStats(run.Output())
	if len(stats) != 2 {
		t.Errorf("%d epochs reported, want 2", len(stats))
	}
	for epoch, s := range stats {
		if s.Samples != 120 || s.Dropped != 0 {
			t.Errorf("epoch %d: %d samples trained, %d dropped; want all 120", epoch, s.Samples, s.Dropped)
		}
	}
	ctx := context.Background()
	cl := c.Store()
	d, err := dataset.Load(ctx, cl, "mnist")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, e := range d.Entries {
		want["cache/mnist/r0-gray/"+e.Shard+".pxs"] = true
	}
	var keys []string
	if err := cl.Walk(ctx, "cache/", func(o store.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("cache object %s is no data shard's decoded shard", k)
		}
		delete(want, k)
	}
	if len(want) > 0 || len(keys) == 0 {
		t.Errorf("decoded shards missing: %v", want)
	}
	again, err := c.Command("ingest").CombinedOutput()
	if err != nil || !strings.Contains(string(again), fmt.Sprintf("decode cache: 0 decoded shards written, %d already there", len(keys))) {
		t.Errorf("re-ingest: %v\n%s", err, again)
	}
}
