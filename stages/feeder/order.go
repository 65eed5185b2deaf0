package feeder

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/supflow/supflow/dataset"
)

// DefaultShardRun is Config.ShardRun's value in pipeline.yaml's defaults
// (config.Default): with bus.batch 256 a message of small images holds
// about 5 runs, so decode makes about 5 ranged GETs for it instead of 256,
// and each sample shares its message with at most 63 shard neighbours
// (docs/benchmarks.md measures 16, 64 and 256).
const DefaultShardRun = 64

// MaxShardRun bounds Config.ShardRun (feeder.shard_run): a run longer than a message buys no
// fewer GETs.
const MaxShardRun = 1 << 16

// shardIndex is the shard layout of a feeder's entries, for runOrder: the
// sample indices of sharded entries grouped by shard, each shard's in
// offset order, then those of loose entries. 4 bytes per sample, built
// once by New.
type shardIndex struct {
	members []uint32 // sample indices: shard by shard, then the loose ones
	starts  []uint32 // members[starts[s]:starts[s+1]] are shard s's; the last is where the loose ones begin
}

// newShardIndex returns the layout of entries, or nil when none is a shard
// member (a loose data set keeps the plain shuffle).
func newShardIndex(entries dataset.Entries) *shardIndex {
	members := make([]uint32, 0, entries.Len())
	var loose []uint32
	for i := range entries.Len() {
		if entries.Entry(i).Shard == "" {
			loose = append(loose, uint32(i))
		} else {
			members = append(members, uint32(i))
		}
	}
	if len(members) == 0 {
		return nil
	}
	byPlace := func(a, b uint32) int {
		ea, eb := entries.Entry(int(a)), entries.Entry(int(b))
		return cmp.Or(cmp.Compare(ea.Shard, eb.Shard), cmp.Compare(ea.Offset, eb.Offset), cmp.Compare(a, b))
	}
	// Ingest writes a sharded manifest in shard order, so the members
	// usually are already: checking costs n comparisons, sorting 1.28M of
	// them through Entries 3 s of the feeder's start.
	if !slices.IsSortedFunc(members, byPlace) {
		slices.SortFunc(members, byPlace)
	}
	x := &shardIndex{}
	for i, m := range members {
		if i == 0 || entries.Entry(int(m)).Shard != entries.Entry(int(members[i-1])).Shard {
			x.starts = append(x.starts, uint32(i))
		}
	}
	x.starts = append(x.starts, uint32(len(members)))
	x.members = append(members, loose...)
	return x
}

// runOrder is epoch's order of a sharded data set: every sample once, in
// runs of up to run consecutive members of one shard (a shard's members
// are cut into runs at a phase drawn per shard and epoch, so the runs
// differ between epochs), the runs and the loose samples in a uniformly
// shuffled order. A message of Config.Batch tasks then holds about
// Batch/run+1 runs, which decode fetches with one ranged GET each; run 1
// is a full shuffle. Like Order, it is fixed by this package: PCG seeded
// by (seed, epoch), Fisher-Yates, Lemire's bounded draws.
func (x *shardIndex) runOrder(seed uint64, epoch uint32, run int) []int {
	rng := rand.NewPCG(seed, splitmix64(uint64(epoch)))
	type span struct{ from, to uint32 } // members[from:to]
	shards := len(x.starts) - 1
	spans := make([]span, 0, len(x.members)/run+shards+len(x.members)-int(x.starts[shards]))
	for s := range shards {
		from, end := x.starts[s], x.starts[s+1]
		for to := from + uint32(bounded(rng, uint64(run))); from < end; to += uint32(run) {
			to = min(to, end)
			if to > from {
				spans = append(spans, span{from, to})
			}
			from = to
		}
	}
	for i := x.starts[shards]; i < uint32(len(x.members)); i++ {
		spans = append(spans, span{i, i + 1})
	}
	for i := len(spans) - 1; i > 0; i-- { // Fisher-Yates over the runs
		j := int(bounded(rng, uint64(i+1)))
		spans[i], spans[j] = spans[j], spans[i]
	}
	order := make([]int, 0, len(x.members))
	for _, sp := range spans {
		for _, m := range x.members[sp.from:sp.to] {
			order = append(order, int(m))
		}
	}
	return order
}
