package dataset

import (
	"context"
	"fmt"
	"math"
	"strings"
	"unsafe"
)

// Entries is an indexed run of entries: a List or a Table.
type Entries interface {
	Len() int
	Entry(i int) Entry
}

// List is a slice of entries as Entries.
type List []Entry

func (l List) Len() int          { return len(l) }
func (l List) Entry(i int) Entry { return l[i] }

// Table holds the entries of one split in columns: what a feeder of
// ImageNet holds for the run's length. Its 1.28M training entries take
// about 68 B each as a Table (the key's bytes, its end, label, size)
// against 219 B as []Entry (a 104 B struct, the key and the SHA-256 as
// strings of their own), which put `supflow feed` at 440 MB.
// A Table does not keep the SHA-256s, which nothing after ingest reads.
// It is read-only once loaded, so safe for concurrent use.
type Table struct {
	split   string
	classes []string
	// The keys, back to back in blocks of keyBlock bytes that never move
	// (a growing slice would copy them all, twice the memory at that
	// moment); a key does not cross blocks. ends[i] is where entry i's
	// key ends, counting every block as keyBlock long.
	keys   [][]byte
	ends   []uint32
	labels []int32
	sizes  []int64
	// Sharded entries only (nil for loose objects): shard[i] is 1 + the
	// index of entry i's shard key in shards, 0 for a loose object.
	shards  []string
	shard   []uint32
	offsets []int64
}

// Len is the number of entries.
func (t *Table) Len() int { return len(t.labels) }

// Split is the split the entries belong to.
func (t *Table) Split() string { return t.split }

// keyBlock is the size of a block of keys, far above store.ValidKey's
// longest key (a variable for the tests, which cross blocks).
var keyBlock uint32 = 1 << 20

// Entry returns entry i, without its SHA-256. Its key shares the Table's
// memory (the Table never changes it).
func (t *Table) Entry(i int) Entry {
	end := t.ends[i]
	blk := (end - 1) / keyBlock // keys are not empty
	start := blk * keyBlock     // the key opened a block,
	if i > 0 {
		start = max(start, t.ends[i-1]) // or follows the one before in it
	}
	b := t.keys[blk][start-blk*keyBlock : end-blk*keyBlock]
	e := Entry{Key: unsafe.String(&b[0], len(b)), Label: t.labels[i], Class: t.classes[t.labels[i]],
		Split: t.split, Size: t.sizes[i]}
	if t.shard != nil && t.shard[i] > 0 {
		e.Shard, e.Offset = t.shards[t.shard[i]-1], t.offsets[i]
	}
	return e
}

// Labels returns every entry's label, in order (what pick takes).
func (t *Table) Labels() []int {
	out := make([]int, len(t.labels))
	for i, l := range t.labels {
		out[i] = int(l)
	}
	return out
}

// Take returns at most limit entries (all when limit is 0), chosen as
// Dataset.Take chooses them (pick), in order.
func (t *Table) Take(limit int, seed uint64) *Table {
	if limit <= 0 || limit >= t.Len() {
		return t // what pick keeps, without its two ints per entry
	}
	// add makes shard on the first sharded entry: t has one iff shard is set.
	idx := pick(t.Labels(), t.shard != nil, limit, seed)
	out := &Table{split: t.split, classes: t.classes}
	index := map[string]uint32{}
	for _, i := range idx {
		_ = out.add(t.Entry(i), index) // fewer keys than t's: they fit
	}
	return out
}

// add appends e, which is of t's split and valid; its strings may be
// borrowed (add copies them). index maps shard keys to shard's values.
func (t *Table) add(e Entry, index map[string]uint32) error {
	n := len(t.keys)
	if n == 0 || len(t.keys[n-1])+len(e.Key) > int(keyBlock) {
		if uint64(n+1)*uint64(keyBlock) > math.MaxUint32 {
			return fmt.Errorf("%w: keys of split %s over 4 GiB", ErrManifest, t.split)
		}
		t.keys, n = append(t.keys, make([]byte, 0, keyBlock)), n+1
	}
	t.keys[n-1] = append(t.keys[n-1], e.Key...)
	t.ends = append(t.ends, uint32(n-1)*keyBlock+uint32(len(t.keys[n-1])))
	t.labels = append(t.labels, e.Label)
	t.sizes = append(t.sizes, e.Size)
	if e.Shard == "" && t.shard == nil {
		return nil
	}
	if t.shard == nil { // the first sharded entry
		t.shard, t.offsets = make([]uint32, len(t.labels)-1, cap(t.labels)), make([]int64, len(t.labels)-1, cap(t.labels))
	}
	s := uint32(0)
	if e.Shard != "" {
		var ok bool
		if s, ok = index[e.Shard]; !ok {
			t.shards = append(t.shards, strings.Clone(e.Shard))
			s = uint32(len(t.shards))
			index[t.shards[s-1]] = s
		}
	}
	t.shard, t.offsets = append(t.shard, s), append(t.offsets, e.Offset)
	return nil
}

// LoadTable reads the entries of split under prefix, checked as Load
// checks them (the whole manifest is), into a Table; the other splits'
// entries are read and dropped. An absent split gives an empty Table.
func LoadTable(ctx context.Context, g Getter, prefix, split string) (*Table, error) {
	t := &Table{split: split}
	index := map[string]uint32{}
	_, err := load(ctx, g, prefix, func(d *Dataset, maxEntries int) {
		t.classes = d.Classes
		n := min(max(d.Info.Counts[split], 0), maxEntries)
		t.labels, t.sizes, t.ends = make([]int32, 0, n), make([]int64, 0, n), make([]uint32, 0, n)
	}, func(_ *Dataset, e Entry) error {
		if e.Split != split {
			return nil
		}
		return t.add(e, index)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
