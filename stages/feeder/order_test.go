package feeder

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/supflow/supflow/dataset"
)

// sharded returns n entries packed into shards of perShard members
// (1024-byte members, as tar packs small PNGs), listed shard by shard
// but each shard's members in descending offset order, then loose
// entries: the order must not depend on the manifest's listing.
func sharded(n, perShard, loose int) []dataset.Entry {
	es := entries(n+loose, "train")
	for i := range n {
		s, k := i/perShard, perShard-1-i%perShard
		es[i].Shard, es[i].Offset, es[i].Size = fmt.Sprintf("shards/train-%06d.tar", s), int64(512+k*1024), 300
	}
	return es
}

// runsPerBatch counts, in each batch of order, the runs decode would
// fetch with one GET: maximal sets of members consecutive in one shard.
// Loose entries count one each.
func runsPerBatch(es []dataset.Entry, order []int, batch int) []int {
	var runs []int
	for n := 0; n < len(order); n += batch {
		b := slices.Clone(order[n:min(n+batch, len(order))])
		slices.SortFunc(b, func(x, y int) int {
			return cmp.Or(cmp.Compare(es[x].Shard, es[y].Shard), cmp.Compare(es[x].Offset, es[y].Offset))
		})
		r := 0
		for i, x := range b {
			if i == 0 || es[x].Shard == "" || es[x].Shard != es[b[i-1]].Shard || es[x].Offset-es[b[i-1]].Offset != 1024 {
				r++
			}
		}
		runs = append(runs, r)
	}
	return runs
}

// TestShardRunOrder: for each layout, every sample once per epoch, the
// same order for the same (seed, epoch) and another for the next epoch,
// and at most about Batch/ShardRun+1 GETs per message (mean over the
// epoch), against about one per sample for a full shuffle.
func TestShardRunOrder(t *testing.T) {
	tests := []struct {
		name                 string
		es                   []dataset.Entry
		run, batch           int
		maxMeanRuns          float64 // per full batch
		minMeanRunsOfShuffle float64 // the same data set with ShardRun 1
	}{
		{"default run, batch 64", sharded(5000, 1000, 0), DefaultShardRun, 64, 64.0/16 + 1.5, 60},
		{"run of a batch", sharded(5000, 1000, 0), 64, 64, 2.1, 60},
		{"run 8, small shards", sharded(3000, 50, 0), 8, 64, 64.0/8 + 2, 55},
		{"run longer than a shard", sharded(1000, 20, 0), 1000, 64, 64.0/20 + 1.5, 40},
		{"mixed with loose entries", sharded(2000, 500, 100), 16, 32, 32.0/16 + 1 + 1.5, 25},
		{"one shard", sharded(777, 1000, 0), 16, 64, 64.0/16 + 1.5, 55},
		{"one sample", sharded(1, 1, 0), 16, 64, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, Config{RunID: "r", Seed: 7, Epochs: 1, Batch: tt.batch, ShardRun: tt.run}, tt.es)
			again := mustNew(t, Config{RunID: "other", Seed: 7, Epochs: 1, Batch: tt.batch, ShardRun: tt.run}, tt.es)
			full := mustNew(t, Config{RunID: "r", Seed: 7, Epochs: 1, Batch: tt.batch, ShardRun: 1}, tt.es)
			for epoch := range uint32(3) {
				order := f.Order(epoch)
				if got := slices.Sorted(slices.Values(order)); !slices.Equal(got, seq(len(tt.es))) {
					t.Fatalf("epoch %d: not a permutation of the %d samples", epoch, len(tt.es))
				}
				if !slices.Equal(order, again.Order(epoch)) {
					t.Fatalf("epoch %d: same seed and epoch gave different orders", epoch)
				}
				if len(tt.es) > 1 && slices.Equal(order, f.Order(epoch+1)) {
					t.Fatalf("epochs %d and %d share an order", epoch, epoch+1)
				}
				if got, shuffled := meanFull(runsPerBatch(tt.es, order, tt.batch), len(tt.es), tt.batch),
					meanFull(runsPerBatch(tt.es, full.Order(epoch), tt.batch), len(tt.es), tt.batch); got > tt.maxMeanRuns || shuffled < tt.minMeanRunsOfShuffle {
					t.Errorf("epoch %d: %.2f GETs per batch (want <= %.2f), full shuffle %.2f (want >= %.2f)", epoch, got, tt.maxMeanRuns, shuffled, tt.minMeanRunsOfShuffle)
				}
			}
		})
	}
}

// TestShardRunKeepsTheShuffleOfLooseDataSets: a data set without shards,
// and ShardRun 1 on a sharded one, give exactly the plain shuffle.
func TestShardRunKeepsTheShuffleOfLooseDataSets(t *testing.T) {
	loose, sh := entries(500, "train"), sharded(500, 100, 0)
	for _, es := range [][]dataset.Entry{loose, sh} {
		plain := mustNew(t, Config{RunID: "r", Seed: 3, Epochs: 1}, es)
		for _, run := range []int{0, 1, 16} {
			f := mustNew(t, Config{RunID: "r", Seed: 3, Epochs: 1, ShardRun: run}, es)
			want := run <= 1 || es[0].Shard == ""
			if got := slices.Equal(f.Order(2), plain.Order(2)); got != want {
				t.Errorf("shard run %d, sharded %v: order is the plain shuffle: %v, want %v", run, es[0].Shard != "", got, want)
			}
		}
	}
	if _, err := New(Config{RunID: "r", Epochs: 1, ShardRun: MaxShardRun + 1}, dataset.List(sh)); err == nil {
		t.Error("New accepted a shard run over the limit")
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// meanFull is the mean of runs over the full batches (the last, short
// one left out), or runs[0] when there is only one.
func meanFull(runs []int, n, batch int) float64 {
	full := max(n/batch, 1)
	sum := 0
	for _, r := range runs[:full] {
		sum += r
	}
	return float64(sum) / float64(full)
}
