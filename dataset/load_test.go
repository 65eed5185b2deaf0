package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/supflow/supflow/store"
)

// putDataset writes classes.json, info.json and a manifest of entries
// into b under prefix "ds".
func putDataset(t *testing.T, b *memBucket, classes []string, entries []Entry) []byte {
	t.Helper()
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Split]++
	}
	cj, err := json.Marshal(classes)
	if err != nil {
		t.Fatal(err)
	}
	ij, err := json.Marshal(Info{Source: "imagefolder", Format: "png", Channels: 3, Mean: []float64{.5, .5, .5},
		Std: []float64{.2, .2, .2}, Counts: counts, Classes: len(classes)})
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	if err := WriteManifest(&m, entries); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for key, data := range map[string][]byte{ClassesKey("ds"): cj, InfoKey("ds"): ij, ManifestKey("ds"): m.Bytes()} {
		if err := b.Put(ctx, key, data, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return m.Bytes()
}

// someEntries are n entries of 3 classes, split by split as Ingest writes
// them.
func someEntries(n int, splits ...string) ([]string, []Entry) {
	classes := []string{"cat", "dog", "zèbre"}
	var out []Entry
	for _, s := range splits {
		for i := range n {
			l := i * len(classes) / n
			out = append(out, Entry{Key: fmt.Sprintf("ds/%s/%s/%d.png", s, classes[l], i), Label: int32(l), Class: classes[l], Split: s, Size: int64(100 + i)})
		}
	}
	return classes, out
}

// TestLoadReadsTheManifestInPieces loads manifests cut into GETs of a few
// bytes to many lines each, lines split across GETs, and gets what a
// whole read gives.
func TestLoadReadsTheManifestInPieces(t *testing.T) {
	classes, entries := someEntries(50, "train", "test")
	defer func(c int64) { manifestChunk = c }(manifestChunk)
	for _, chunk := range []int64{1, 7, 100, 4096, 1 << 20} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			manifestChunk = chunk
			b := newMemBucket()
			putDataset(t, b, classes, entries)
			d, err := Load(context.Background(), b, "ds")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d.Entries, entries) || !reflect.DeepEqual(d.Classes, classes) {
				t.Fatalf("loaded %d entries, %v; want %d, %v", len(d.Entries), d.Classes, len(entries), classes)
			}
			if cap(d.Entries) != len(entries) {
				t.Errorf("entries have capacity %d for %d (info.json's counts): grown by appending", cap(d.Entries), len(entries))
			}
			// One copy of each class name: the one of classes.json.
			for i, e := range d.Entries {
				if unsafe.StringData(e.Class) != unsafe.StringData(d.Classes[e.Label]) {
					t.Fatalf("entry %d's class %q is a copy of its own", i, e.Class)
				}
			}
		})
	}
}

// rewriting is a bucket whose manifest is rewritten after the first
// ranged GET, as a re-ingest in the middle of a load would.
type rewriting struct {
	*memBucket
	with []byte
	done bool
}

func (r *rewriting) GetRange(ctx context.Context, key string, off, n, max int64) ([]byte, error) {
	b, err := r.memBucket.GetRange(ctx, key, off, n, max)
	if !r.done {
		r.done = true
		if err := r.Put(ctx, key, r.with, store.PutOptions{}); err != nil {
			return nil, err
		}
	}
	return b, err
}

func TestLoadRefuses(t *testing.T) {
	classes, entries := someEntries(20, "train")
	defer func(c int64) { manifestChunk = c }(manifestChunk)
	manifestChunk = 64
	tests := []struct {
		name   string
		bucket func(*memBucket) Getter
		want   error
		msg    string
	}{
		{"rewritten while read", func(b *memBucket) Getter {
			longer := append(bytes.Clone(b.objs[ManifestKey("ds")]), b.objs[ManifestKey("ds")]...)
			return &rewriting{memBucket: b, with: longer}
		}, ErrManifest, "rewritten while it was read"},
		{"no manifest", func(b *memBucket) Getter { b.delete(ManifestKey("ds")); return b }, store.ErrNotFound, "manifest.jsonl"},
		{"cut in a line", func(b *memBucket) Getter {
			m := b.objs[ManifestKey("ds")]
			b.objs[ManifestKey("ds")] = m[:len(m)-10]
			return b
		}, ErrManifest, "line 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newMemBucket()
			putDataset(t, b, classes, entries)
			_, err := Load(context.Background(), tt.bucket(b), "ds")
			if err == nil || !strings.Contains(err.Error(), tt.msg) || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Load = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	_, entries := someEntries(4, "train", "test")
	mixed := slices.Concat(entries[:2], entries[4:6], entries[2:4]) // train, test, train
	tests := []struct {
		name    string
		entries []Entry
		split   string
		want    []Entry
		shared  bool // a slice of the entries, not a copy
	}{
		{"first run", entries, "train", entries[:4], true},
		{"last run", entries, "test", entries[4:], true},
		{"absent", entries, "val", nil, false},
		{"two runs", mixed, "train", slices.Concat(mixed[:2], mixed[4:]), false},
		{"one run among others", mixed, "test", mixed[2:4], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Dataset{Entries: tt.entries}
			got := d.Split(tt.split)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Split(%q) = %v, want %v", tt.split, got, tt.want)
			}
			if shared := len(got) > 0 && &got[0] == &d.Entries[index(d.Entries, got[0].Key)]; shared != tt.shared {
				t.Errorf("shared with Entries = %v, want %v", shared, tt.shared)
			}
			if len(got) > 0 {
				before := append([]Entry{}, d.Entries...)
				_ = append(got, Entry{Key: "x"}) // must not write into Entries
				if !reflect.DeepEqual(before, d.Entries) {
					t.Errorf("appending to the split changed Entries")
				}
			}
		})
	}
}

// index is the index of the entry with key.
func index(entries []Entry, key string) int {
	return slices.IndexFunc(entries, func(e Entry) bool { return e.Key == key })
}
