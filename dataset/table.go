package dataset

import (
	"context"
	"fmt"
	"math"
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
// about 75 B each as a Table (the key's bytes, its end, label, size)
// against about 220 B as []Entry (a 104 B struct, the key and the
// SHA-256 as strings of their own), which put `supflow feed` at 440 MB.
// A Table does not keep the SHA-256s, which nothing after ingest reads.
// It is read-only once loaded, so safe for concurrent use.
type Table struct {
	split   string
	classes []string
	keys    []byte   // every key, back to back
	ends    []uint32 // entry i's key is keys[ends[i-1]:ends[i]]
	labels  []int32
	sizes   []int64
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

// Entry returns entry i, without its SHA-256. Its key shares the Table's
// memory (the Table never changes it).
func (t *Table) Entry(i int) Entry {
	lo := uint32(0)
	if i > 0 {
		lo = t.ends[i-1]
	}
	e := Entry{Key: unsafe.String(&t.keys[lo], int(t.ends[i]-lo)), Label: t.labels[i], Class: t.classes[t.labels[i]],
		Split: t.split, Size: t.sizes[i]}
	if t.shard != nil && t.shard[i] > 0 {
		e.Shard, e.Offset = t.shards[t.shard[i]-1], t.offsets[i]
	}
	return e
}

// Labels returns every entry's label, in order (what Select takes).
func (t *Table) Labels() []int {
	out := make([]int, len(t.labels))
	for i, l := range t.labels {
		out[i] = int(l)
	}
	return out
}

// Take returns at most limit entries (all when limit is 0), chosen by
// Select with seed as Dataset.Take chooses them, in order.
func (t *Table) Take(limit int, seed uint64) *Table {
	idx := Select(t.Labels(), limit, seed)
	if len(idx) == t.Len() {
		return t
	}
	out := &Table{split: t.split, classes: t.classes}
	index := map[string]uint32{}
	for _, i := range idx {
		_ = out.add(t.Entry(i), index) // fewer keys than t's: they fit
	}
	return out
}

// add appends e, which is of t's split; index maps shard keys to
// shard's values.
func (t *Table) add(e Entry, index map[string]uint32) error {
	if len(t.keys)+len(e.Key) > math.MaxUint32 {
		return fmt.Errorf("%w: keys of split %s over 4 GiB", ErrManifest, t.split)
	}
	t.keys = append(t.keys, e.Key...)
	t.ends = append(t.ends, uint32(len(t.keys)))
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
			t.shards = append(t.shards, e.Shard)
			s = uint32(len(t.shards))
			index[e.Shard] = s
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
