package dataset

import (
	"cmp"
	"math/rand/v2"
	"slices"
)

// selectStream is the PCG stream of Select's generator: a fixed constant,
// so that only the seed varies a selection.
const selectStream = 0x5e1ec7

// Select returns the sorted indices of at most limit of the samples whose
// labels are given, class-stratified and seeded: each class keeps its share
// of limit (quotas), and which samples of a class are kept is a seeded
// shuffle. The same labels, limit and seed always give the same indices.
// limit <= 0 or limit >= len(labels) keeps every sample.
//
// It is the one place a limit is cut at ingest and index (per split); on a
// manifest, Dataset.Take and Table.Take (the feeder's and the evaluation's
// limits and the kNN monitor's bank and query) cut a loose split with it
// and a sharded one with selectStretch, to the same quotas. A loose
// ingest's manifest is written class by class, so its first N entries
// would be the first classes only.
func Select(labels []int, limit int, seed uint64) []int {
	if limit <= 0 || limit >= len(labels) {
		return every(len(labels))
	}
	rng := selectRand(seed)
	var out []int
	for _, q := range quotas(labels, limit, rng) {
		idx := q.members
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		out = append(out, idx[:q.keep]...)
	}
	slices.Sort(out)
	return out
}

// selectStretch returns the sorted indices of the samples, whose labels
// are given in manifest order, that a limited pick of a sharded split
// keeps: as many of each class as Select keeps (quotas, drawn from the
// same generator), but taken from one stretch of the split: from a seeded
// position, forward and wrapping around, each sample whose class still has
// room, until every class is full. A sharded manifest is in the salted
// hash order of the names (mixOrder), so the classes are mixed along it
// and the stretch is about limit samples long (longer where a class is
// rare): the kept samples are shard neighbours, which decode and the
// evaluation fetch in a few ranged GETs, where Select's scatter costs one
// GET each. What the pick gives up is the scatter: it is a random stretch
// of a pseudo-random order, so still a fair sample of each class. The same
// labels, limit and seed always give the same indices; limit <= 0 or
// limit >= len(labels) keeps every sample.
func selectStretch(labels []int, limit int, seed uint64) []int {
	n := len(labels)
	if limit <= 0 || limit >= n {
		return every(n)
	}
	rng := selectRand(seed)
	room := map[int]int{}
	for _, q := range quotas(labels, limit, rng) {
		room[q.class] = q.keep
	}
	start := rng.IntN(n)
	// Each class has at least its quota of samples, so one lap fills them.
	out := make([]int, 0, limit)
	for k := 0; len(out) < limit; k++ {
		i := (start + k) % n
		if room[labels[i]] > 0 {
			room[labels[i]]--
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// selectRand is the generator of Select and selectStretch for seed.
func selectRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, selectStream)) }

// every is the indices 0 to n-1: what a pick without a limit keeps.
func every(n int) []int {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}

// quota is how many of a class's samples a limited pick keeps.
type quota struct {
	class   int
	members []int // the class's indices, ascending
	keep    int
}

// quotas returns the classes of labels, ascending, and how many of each a
// pick of limit (0 < limit < len(labels)) keeps: each class its share of
// limit (limit*n_class/n, rounded down; the samples left over go one each
// to the classes with the largest remainders, ties in an order drawn from
// rng, one draw per class).
func quotas(labels []int, limit int, rng *rand.Rand) []quota {
	n := len(labels)
	byClass := map[int][]int{}
	var classes []int
	for i, l := range labels {
		if byClass[l] == nil {
			classes = append(classes, l)
		}
		byClass[l] = append(byClass[l], i)
	}
	slices.Sort(classes)
	type share struct {
		class, quota, rem, tie int
	}
	shares := make([]share, len(classes))
	taken := 0
	for i, c := range classes {
		size := len(byClass[c])
		q := limit * size / n
		shares[i] = share{class: c, quota: q, rem: limit * size % n, tie: rng.Int()}
		taken += q
	}
	order := slices.Clone(shares)
	slices.SortFunc(order, func(a, b share) int {
		return cmp.Or(cmp.Compare(b.rem, a.rem), cmp.Compare(a.tie, b.tie))
	})
	extra := map[int]int{}
	for i := 0; taken < limit; i++ {
		extra[order[i].class]++ // each remainder is < n, so limit - taken < len(classes)
		taken++
	}
	out := make([]quota, len(shares))
	for i, s := range shares {
		out[i] = quota{class: s.class, members: byClass[s.class], keep: s.quota + extra[s.class]}
	}
	return out
}

// pick returns the sorted indices a limited pick of a split keeps, given
// its labels in manifest order and whether any of its entries is a shard
// member: selectStretch for a sharded split, Select for a loose one. It is
// what Dataset.Take and Table.Take share, so the feeder and the evaluation
// cut the same samples.
func pick(labels []int, sharded bool, limit int, seed uint64) []int {
	if sharded {
		return selectStretch(labels, limit, seed)
	}
	return Select(labels, limit, seed)
}

// Selection is a limit per split and the seed Select draws it with.
type Selection struct {
	// PerSplit keeps at most this many samples of a split; a split not
	// named, or named with 0, is kept whole.
	PerSplit map[string]int
	Seed     uint64
}

// Limited says whether any split is limited.
func (s Selection) Limited() bool {
	for _, n := range s.PerSplit {
		if n > 0 {
			return true
		}
	}
	return false
}

// keep returns which of a split's samples, given by their labels, s keeps:
// a mask over labels.
func (s Selection) keep(split string, labels []int) []bool {
	mask := make([]bool, len(labels))
	for _, i := range Select(labels, s.PerSplit[split], s.Seed) {
		mask[i] = true
	}
	return mask
}

func (s Selection) negative() bool {
	for _, n := range s.PerSplit {
		if n < 0 {
			return true
		}
	}
	return false
}
