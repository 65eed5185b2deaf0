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
// of limit (limit*n_class/n, rounded down; the samples left over go one
// each to the classes with the largest remainders, ties in a seeded order),
// and which samples of a class are kept is a seeded shuffle. The same
// labels, limit and seed always give the same indices. limit <= 0 or
// limit >= len(labels) keeps every sample.
//
// It is the one place a limit is cut: ingest and index (per split), the
// feeder's and the evaluation's limits and the kNN monitor's bank and query
// (Dataset.Take). A loose ingest's manifest is written class by class, so
// its first N entries would be the first classes only.
func Select(labels []int, limit int, seed uint64) []int {
	n := len(labels)
	if limit <= 0 || limit >= n {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all
	}
	rng := rand.New(rand.NewPCG(seed, selectStream))
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
	var out []int
	for _, s := range shares {
		idx := byClass[s.class]
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		out = append(out, idx[:s.quota+extra[s.class]]...)
	}
	slices.Sort(out)
	return out
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
