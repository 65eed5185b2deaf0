package dataset

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// mixSalt is hashed before each name by mixOrder: the order's fixed seed.
// Changing it reorders, and so rewrites, every sharded data set.
const mixSalt = "supflow/dataset: mix v1\x00"

// maxMixBytes bounds the records a source of fixed-size records (idx,
// CIFAR) holds to pass them in a mixed order (inOrder): it reads its file
// once per window of this many bytes of records, so MNIST's 47 MB of train
// images take one read and CIFAR-10's 150 MB three.
const maxMixBytes = 64 << 20

// order returns the positions, in a split of len(labels) samples, of the
// samples Samples passes, in the order it passes them: those o.Limit
// keeps (Select, on the labels), ascending, or with o.Mix in mixOrder's
// order over name (sample i's name, unique within the split). Selection
// comes first, so Mix never changes which samples are kept.
func (o ReadOptions) order(split string, labels []int, name func(i int) string) []int {
	kept := Select(labels, o.Limit.PerSplit[split], o.Limit.Seed)
	if o.Mix {
		kept = mixOrder(kept, name)
	}
	return kept
}

// mixOrder returns the positions kept sorted by the SHA-256 of mixSalt and
// each sample's name (ties, which SHA-256 makes unlikely, by position): a
// pseudo-random order that depends on nothing but the names. The same
// samples always come out in the same order, so a re-ingest packs the same
// shards; a sample added or removed moves no other relative to the rest, so
// the shards before it stay as they were.
func mixOrder(kept []int, name func(i int) string) []int {
	type draw struct {
		h   uint64
		pos int
	}
	ds := make([]draw, len(kept))
	for k, i := range kept {
		sum := sha256.Sum256([]byte(mixSalt + name(i)))
		ds[k] = draw{binary.BigEndian.Uint64(sum[:8]), i}
	}
	slices.SortFunc(ds, func(a, b draw) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.pos, b.pos)) })
	out := make([]int, len(ds))
	for k, d := range ds {
		out[k] = d.pos
	}
	return out
}

// scanFunc reads a stream of fixed-size records from its start and passes
// each through position last to fn; rec is reused between calls.
type scanFunc func(last int, fn func(i int, rec []byte) error) error

// inOrder passes the records at the positions order gives (distinct) to
// fn, in that order. Ascending positions take one scan, up to the last,
// and hold no record; any other order is cut into windows of at most
// maxBytes of records (sources pass maxMixBytes), each collected by one
// scan and then passed on. fn must not keep rec.
func inOrder(order []int, recLen, maxBytes int, scan scanFunc, fn func(i int, rec []byte) error) error {
	if len(order) == 0 {
		return nil
	}
	if slices.IsSorted(order) {
		next := 0
		return scan(order[len(order)-1], func(i int, rec []byte) error {
			if i != order[next] {
				return nil
			}
			next++
			return fn(i, rec)
		})
	}
	per := max(1, maxBytes/recLen)
	for from := 0; from < len(order); from += per {
		win := order[from:min(from+per, len(order))]
		slot := make(map[int]int, len(win))
		for k, i := range win {
			slot[i] = k
		}
		buf := make([]byte, len(win)*recLen)
		err := scan(slices.Max(win), func(i int, rec []byte) error {
			if k, ok := slot[i]; ok {
				copy(buf[k*recLen:], rec)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for k, i := range win {
			if err := fn(i, buf[k*recLen:(k+1)*recLen]); err != nil {
				return err
			}
		}
	}
	return nil
}
