package feeder

import (
	"cmp"
	"slices"
	"testing"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/storetest"
)

// TestShardRunsOfAMixedIngest: a class-sorted ImageFolder (10 classes of
// 40) ingested into small shards and fed in runs of 16 gives batches of 64
// holding about as many classes as a full shuffle, for every seed; the same
// images laid out in source order, as ingest packed them before it mixed,
// give about 6. The test is deterministic (fixed images, seeds 0..19); the
// bounds leave a margin of 2 and 1 classes.
func TestShardRunsOfAMixedIngest(t *testing.T) {
	const classes, batch, run = 10, 64, DefaultShardRun
	c, ctx := storetest.New(t), t.Context()
	src, err := dataset.OpenImageFolder(fixtures.ClassSortedImageFolder(t, classes, 40, 4), 3)
	if err != nil {
		t.Fatal(err)
	}
	// About 30 members of 1 KiB (header, tiny PNG, padding) a shard.
	if _, err := dataset.Ingest(ctx, c, src, dataset.Options{Prefix: "ds", ShardBytes: 32 << 10}); err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Load(ctx, c, "ds")
	if err != nil {
		t.Fatal(err)
	}
	mixed := d.Split("train")
	if shards := len(newShardIndex(dataset.List(mixed)).starts) - 1; len(mixed) != 400 || shards < 10 {
		t.Fatalf("%d entries in %d shards", len(mixed), shards)
	}
	// The layout of a source-order ingest: the same slots (shard, offset)
	// taken by the entries in key order, i.e. class by class.
	sorted := slices.Clone(mixed)
	slices.SortFunc(sorted, func(a, b dataset.Entry) int { return cmp.Compare(a.Key, b.Key) })
	slots := slices.Clone(mixed)
	slices.SortFunc(slots, func(a, b dataset.Entry) int {
		return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.Offset, b.Offset))
	})
	for i := range sorted {
		sorted[i].Shard, sorted[i].Offset = slots[i].Shard, slots[i].Offset
	}
	// classesPerBatch is the mean number of classes in the full batches
	// of epochs 0..2 under seed.
	classesPerBatch := func(es []dataset.Entry, shardRun int, seed uint64) float64 {
		f := mustNew(t, Config{RunID: "r", Seed: seed, Epochs: 3, Batch: batch, ShardRun: shardRun}, es)
		var sum, n int
		for epoch := range uint32(3) {
			order := f.Order(epoch)
			for from := 0; from+batch <= len(order); from += batch {
				seen := map[int32]bool{}
				for _, i := range order[from : from+batch] {
					seen[es[i].Label] = true
				}
				sum, n = sum+len(seen), n+1
			}
		}
		return float64(sum) / float64(n)
	}
	var mixedSum, sortedSum, shuffleSum float64
	const seeds = 20
	for seed := range uint64(seeds) {
		m, s, full := classesPerBatch(mixed, run, seed), classesPerBatch(sorted, run, seed), classesPerBatch(mixed, 1, seed)
		// A full shuffle gives ~9.99 classes a batch, runs of 16 of a
		// mixed ingest as many; of a class-sorted layout ~6 (runs of
		// one or two classes).
		if m < 8 {
			t.Errorf("seed %d: %.2f classes a batch of %d in runs of %d (full shuffle %.2f)", seed, m, batch, run, full)
		}
		if s > 7.5 {
			t.Errorf("seed %d: %.2f classes a batch from the class-sorted layout: the test no longer tells the two apart", seed, s)
		}
		mixedSum, sortedSum, shuffleSum = mixedSum+m, sortedSum+s, shuffleSum+full
	}
	t.Logf("classes per batch of %d (of %d), mean over %d seeds x 3 epochs: mixed shards, runs of %d: %.2f; class-sorted shards, runs of %d: %.2f; full shuffle: %.2f",
		batch, classes, seeds, run, mixedSum/seeds, run, sortedSum/seeds, shuffleSum/seeds)
}
