package dataset

import (
	"fmt"
	"image/color"
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
