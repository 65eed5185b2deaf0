package dataset

import (
	"fmt"
	"image/color"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// classCounts counts the labels at idx.
func classCounts(labels, idx []int) map[int]int {
	out := map[int]int{}
	for _, i := range idx {
		out[labels[i]]++
	}
	return out
}

// TestSelectStratified: a manifest written class by class (three classes
// of 600, 300 and 100) limited to 100 keeps 60, 30 and 10, not the first
// 100 entries (all class 0); the same seed gives the same indices, another
// seed others with the same shares.
func TestSelectStratified(t *testing.T) {
	var labels []int
	for c, n := range []int{600, 300, 100} {
		for range n {
			labels = append(labels, c)
		}
	}
	got := Select(labels, 100, 7)
	if len(got) != 100 || !slices.IsSorted(got) {
		t.Fatalf("%d indices, sorted %v", len(got), slices.IsSorted(got))
	}
	if c := classCounts(labels, got); c[0] != 60 || c[1] != 30 || c[2] != 10 {
		t.Fatalf("class counts %v, want 60/30/10", c)
	}
	if again := Select(labels, 100, 7); !slices.Equal(again, got) {
		t.Fatal("the same seed selected differently")
	}
	other := Select(labels, 100, 8)
	if slices.Equal(other, got) {
		t.Fatal("another seed selected the same indices")
	}
	if c := classCounts(labels, other); c[0] != 60 || c[1] != 30 || c[2] != 10 {
		t.Fatalf("seed 8: class counts %v", c)
	}
	if slices.Equal(got[:60], Select(labels, 60, 99)[:60]) {
		t.Fatal("class 0 kept its first images, not a shuffle")
	}
}

// TestSelectRemainders: shares that do not divide go to the largest
// remainders, ties broken by the seed over the seeds (not always the lowest
// label); limit 0 or >= n keeps everything, in order.
func TestSelectRemainders(t *testing.T) {
	labels := []int{2, 0, 1, 2, 0, 1, 2, 0, 1} // three classes of 3
	winners := map[int]bool{}
	for seed := range uint64(32) {
		got := Select(labels, 2, seed)
		c := classCounts(labels, got)
		if len(got) != 2 || len(c) != 2 {
			t.Fatalf("seed %d: %v from %d classes, want 2 from 2", seed, got, len(c))
		}
		for l := range c {
			winners[l] = true
		}
	}
	if len(winners) != 3 {
		t.Fatalf("over 32 seeds only classes %v won a tie", winners)
	}
	// 7 of 10 with classes of 5, 3 and 2: shares 3.5, 2.1, 1.4 -> 4, 2, 1.
	labels = []int{0, 0, 0, 0, 0, 1, 1, 1, 2, 2}
	if c := classCounts(labels, Select(labels, 7, 1)); c[0] != 4 || c[1] != 2 || c[2] != 1 {
		t.Fatalf("limit 7: %v, want 4/2/1", c)
	}
	for _, limit := range []int{0, 10, 11} {
		if got := Select(labels, limit, 1); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
			t.Fatalf("limit %d: %v", limit, got)
		}
	}
	if got := Select(nil, 3, 1); len(got) != 0 {
		t.Fatalf("no labels: %v", got)
	}
}

// mixedLabels is a split of the given class sizes in a seeded shuffle: the
// classes mixed along it, as along a sharded manifest (mixOrder).
func mixedLabels(sizes []int, seed uint64) []int {
	var labels []int
	for c, n := range sizes {
		for range n {
			labels = append(labels, c)
		}
	}
	rand.New(rand.NewPCG(seed, 0)).Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	return labels
}

// stretchFrom says whether kept is what a scan of labels from position
// start, forward and wrapping, takes with want[c] of each class c: each
// sample whose class is not yet full, until all are. It returns the length
// of the stretch scanned.
func stretchFrom(labels, kept []int, want map[int]int, start int) (int, bool) {
	n, left := len(labels), len(kept)
	in := map[int]bool{}
	for _, i := range kept {
		in[i] = true
	}
	got := map[int]int{}
	for k := 0; k < n && left > 0; k++ {
		i := (start + k) % n
		if full := got[labels[i]] == want[labels[i]]; full == in[i] {
			return 0, false // taken though full, or passed over with room
		}
		if in[i] {
			got[labels[i]]++
			left--
			if left == 0 {
				return k + 1, true
			}
		}
	}
	return 0, false
}

// TestSelectStretch: a limited pick of a sharded split keeps exactly
// Select's count of each class, all from one stretch of the split scanned
// from some position (wrapping around), sorted, the same for the same
// seed; limit <= 0 or >= n keeps everything.
func TestSelectStretch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels []int
		limit  int
		// maxLen bounds the stretch scanned (0: not checked); wraps asks
		// that some seed's stretch wraps around the split's end.
		maxLen int
		wraps  bool
	}{
		{name: "balanced", labels: mixedLabels([]int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}, 1), limit: 100, maxLen: 300},
		{name: "unbalanced, a rare class", labels: mixedLabels([]int{600, 300, 95, 5}, 2), limit: 100},
		{name: "limit n-1", labels: mixedLabels([]int{30, 20, 10}, 3), limit: 59, wraps: true},
		{name: "wrap-around", labels: mixedLabels([]int{50, 50}, 4), limit: 60, wraps: true},
		{name: "one class", labels: make([]int, 40), limit: 7, maxLen: 7},
		{name: "class by class", labels: []int{0, 0, 0, 0, 1, 1, 1, 1, 2, 2}, limit: 5, wraps: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, wrapped := len(tc.labels), false
			for seed := range uint64(32) {
				got := selectStretch(tc.labels, tc.limit, seed)
				if len(got) != tc.limit || got[0] < 0 || got[len(got)-1] >= n {
					t.Fatalf("seed %d: %v, want %d indices of %d", seed, got, tc.limit, n)
				}
				for k := 1; k < len(got); k++ {
					if got[k] <= got[k-1] {
						t.Fatalf("seed %d: %v is not ascending", seed, got)
					}
				}
				want := classCounts(tc.labels, Select(tc.labels, tc.limit, seed))
				if c := classCounts(tc.labels, got); !maps.Equal(c, want) {
					t.Fatalf("seed %d: class counts %v, Select's %v", seed, c, want)
				}
				if again := selectStretch(tc.labels, tc.limit, seed); !slices.Equal(again, got) {
					t.Fatalf("seed %d: picked differently the second time", seed)
				}
				// The scan starts at a kept sample: try each.
				length, ok := 0, false
				for _, start := range got {
					if length, ok = stretchFrom(tc.labels, got, want, start); ok {
						wrapped = wrapped || start+length > n
						break
					}
				}
				if !ok || tc.maxLen > 0 && length > tc.maxLen {
					t.Fatalf("seed %d: %v is no stretch of at most %d of %v (found %v, %d long)", seed, got, tc.maxLen, tc.labels, ok, length)
				}
			}
			if tc.wraps && !wrapped {
				t.Error("no seed's stretch wrapped around")
			}
			for _, limit := range []int{0, -1, n, n + 1} {
				if got := selectStretch(tc.labels, limit, 1); !slices.Equal(got, every(n)) {
					t.Errorf("limit %d: %v", limit, got)
				}
			}
		})
	}
}

// TestTakeSharded: Dataset.Take and Table.Take cut a split with a shard
// member in it by selectStretch, a loose one by Select, in manifest order.
func TestTakeSharded(t *testing.T) {
	labels := mixedLabels([]int{20, 12, 8}, 5)
	var loose Dataset
	for i, l := range labels {
		loose.Entries = append(loose.Entries, Entry{Key: fmt.Sprintf("k%02d", i), Label: int32(l), Class: string(rune('a' + l)), Split: "train"})
	}
	sharded := Dataset{Entries: withShards(loose.Entries)}
	for _, tc := range []struct {
		name string
		d    Dataset
		pick func([]int, int, uint64) []int
	}{
		{"loose", loose, Select},
		{"sharded", sharded, selectStretch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.d.Take("train", 10, 3)
			var want []Entry
			for _, i := range tc.pick(labels, 10, 3) {
				want = append(want, tc.d.Entries[i])
			}
			if !slices.Equal(got, want) {
				t.Errorf("Take = %v, want %v", got, want)
			}
		})
	}
	if slices.Equal(selectStretch(labels, 10, 3), Select(labels, 10, 3)) {
		t.Error("the stretch and the scatter picked the same: the cases tell nothing")
	}
}

// TestTake: Dataset.Take cuts a split with Select, in manifest order.
func TestTake(t *testing.T) {
	var d Dataset
	for i := range 40 {
		split := "train"
		if i%4 == 3 {
			split = "test"
		}
		d.Entries = append(d.Entries, Entry{Key: string(rune('a' + i)), Label: int32(i / 20), Split: split})
	}
	got := d.Take("train", 10, 3)
	labels := make([]int, 0, 30)
	for _, e := range d.Split("train") {
		labels = append(labels, int(e.Label))
	}
	idx := Select(labels, 10, 3)
	if len(got) != 10 {
		t.Fatalf("%d entries", len(got))
	}
	for i, e := range got {
		if want := d.Split("train")[idx[i]]; e != want {
			t.Fatalf("entry %d = %+v, want %+v", i, e, want)
		}
	}
	if n := len(d.Take("test", 0, 3)); n != 10 {
		t.Fatalf("no limit: %d test entries", n)
	}
}

// TestIngestLimitsPerSplit: ingest keeps limit_train images of the train
// split and limit_test of the test split (not the larger of the two of
// each), class-stratified, and exactly the entries Take would cut from the
// whole data set's manifest with the same seed, so feed and evaluate see
// what ingest uploaded.
func TestIngestLimitsPerSplit(t *testing.T) {
	dir := t.TempDir()
	for split, perClass := range map[string][]int{"train": {12, 6, 2}, "test": {4, 4, 4}} {
		for c, n := range perClass {
			for i := range n {
				writePNG(t, filepath.Join(dir, split, string(rune('a'+c)), fmt.Sprintf("%02d.png", i)), 2, 2, color.Gray{Y: uint8(20*c + i)})
			}
		}
	}
	src, err := OpenImageFolder(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	b := newMemBucket()
	sel := Selection{PerSplit: map[string]int{"train": 10, "test": 3}, Seed: 5}
	limited, err := Ingest(ctx, b, src, Options{Prefix: "limited", Limit: sel})
	if err != nil {
		t.Fatal(err)
	}
	if limited.Info.Counts["train"] != 10 || limited.Info.Counts["test"] != 3 || limited.Written != 13 {
		t.Fatalf("counts %v, written %d; want 10 train, 3 test", limited.Info.Counts, limited.Written)
	}
	whole, err := Ingest(ctx, b, src, Options{Prefix: "whole"})
	if err != nil {
		t.Fatal(err)
	}
	d := Dataset{Entries: whole.Entries}
	var want []string
	for _, split := range []string{"test", "train"} {
		for _, e := range d.Take(split, sel.PerSplit[split], sel.Seed) {
			want = append(want, strings.TrimPrefix(e.Key, "whole/"))
		}
	}
	var got []string
	perClass := map[string]int{}
	for _, e := range limited.Entries {
		got = append(got, strings.TrimPrefix(e.Key, "limited/"))
		perClass[e.Split+"/"+e.Class]++
	}
	if !slices.Equal(got, want) {
		t.Errorf("ingested %v, Take cuts %v", got, want)
	}
	// train: 12/6/2 of 20 -> 6/3/1; test: 4/4/4 -> one each.
	if perClass["train/a"] != 6 || perClass["train/b"] != 3 || perClass["train/c"] != 1 || perClass["test/a"] != 1 || perClass["test/b"] != 1 {
		t.Errorf("per class %v", perClass)
	}
}
