package dataset

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// withShards puts every other entry of each split in one of two shards.
func withShards(entries []Entry) []Entry {
	out := append([]Entry(nil), entries...)
	for i := range out {
		if i%2 == 0 {
			out[i].Shard, out[i].Offset = fmt.Sprintf("ds/shards/%s-%06d.tar", out[i].Split, i%4/2), int64(512*i)
		}
		out[i].SHA256 = sha
	}
	return out
}

// entriesOf is t's entries as a slice.
func entriesOf(t *Table) []Entry {
	var out []Entry
	for i := range t.Len() {
		out = append(out, t.Entry(i))
	}
	return out
}

// withoutSHA is the entries of split without their SHA-256s, which a
// Table does not keep.
func withoutSHA(entries []Entry, split string) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Split == split {
			e.SHA256 = ""
			out = append(out, e)
		}
	}
	return out
}

func TestLoadTable(t *testing.T) {
	classes, loose := someEntries(30, "train", "test")
	defer func(c int64, k uint32) { manifestChunk, keyBlock = c, k }(manifestChunk, keyBlock)
	manifestChunk, keyBlock = 333, 64 // keys of 17-21 bytes: three to a block
	for _, tt := range []struct {
		name    string
		entries []Entry
	}{{"loose", loose}, {"sharded", withShards(loose)}} {
		b := newMemBucket()
		putDataset(t, b, classes, tt.entries)
		for _, split := range []string{"train", "test", "val"} {
			t.Run(tt.name+"/"+split, func(t *testing.T) {
				tab, err := LoadTable(context.Background(), b, "ds", split)
				if err != nil {
					t.Fatal(err)
				}
				want := withoutSHA(tt.entries, split)
				if got := entriesOf(tab); !reflect.DeepEqual(got, want) || tab.Split() != split {
					t.Fatalf("LoadTable(%s) = %d entries %v, want %d %v", split, tab.Len(), got, len(want), want)
				}
				// The same as what a List of Load's entries gives.
				d, err := Load(context.Background(), b, "ds")
				if err != nil {
					t.Fatal(err)
				}
				for _, limit := range []int{0, 1, 7, 29} {
					want := withoutSHA(d.Take(split, limit, 5), split)
					if got := entriesOf(tab.Take(limit, 5)); !reflect.DeepEqual(got, want) {
						t.Errorf("Take(%d) = %v, want %v", limit, got, want)
					}
				}
			})
		}
	}
}

func TestLoadTableRefuses(t *testing.T) {
	classes, entries := someEntries(5, "train")
	entries[3].Class = "dog" // label 1 is "dog"; entry 3 has label 2
	entries[3].Label = 2
	b := newMemBucket()
	putDataset(t, b, classes, entries)
	if _, err := LoadTable(context.Background(), b, "ds", "train"); !errors.Is(err, ErrManifest) {
		t.Fatalf("LoadTable = %v, want ErrManifest (class disagrees with classes.json)", err)
	}
}
