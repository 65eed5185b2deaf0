package dataset

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/store"
)

// TestIngestShards ingests MNIST images loose and sharded into the same
// bucket: the sharded entries name the same images (the limit selects the
// same samples; only their order is mixed), each the same bytes at its
// offset in a tar shard of one split (members named as the loose objects);
// a re-run writes no shard and leaves the objects as they were; a
// truncated shard makes Missing report exactly the entries past its end.
func TestIngestShards(t *testing.T) {
	c, ctx := storetest.New(t), t.Context()
	src, err := OpenIDX(fixtures.MNISTDir(t), "mnist", nil)
	if err != nil {
		t.Fatal(err)
	}
	loose, err := Ingest(ctx, c, src, Options{Prefix: "loose", Limit: Selection{PerSplit: map[string]int{"train": 60, "test": 60}}})
	if err != nil {
		t.Fatal(err)
	}
	const shardBytes = 8 << 10 // a few dozen MNIST PNGs
	rep, err := Ingest(ctx, c, src, Options{Prefix: "sh", Limit: Selection{PerSplit: map[string]int{"train": 60, "test": 60}}, ShardBytes: shardBytes, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Written != 120 || rep.Skipped != 0 || rep.Shards < 4 || len(rep.Entries) != 120 {
		t.Fatalf("report: written %d skipped %d shards %d entries %d", rep.Written, rep.Skipped, rep.Shards, len(rep.Entries))
	}
	if task := rep.Entries[3].Task("r", 1, 3); task.Key != rep.Entries[3].Shard || int64(task.Offset) != rep.Entries[3].Offset || int64(task.Length) != rep.Entries[3].Size {
		t.Fatalf("task %+v of entry %+v", task, rep.Entries[3])
	}
	if task := loose.Entries[3].Task("r", 1, 3); task.Key != loose.Entries[3].Key || task.Length != 0 {
		t.Fatalf("task %+v of loose entry", task)
	}
	looseByKey := map[string]Entry{}
	for _, l := range loose.Entries {
		looseByKey["sh"+strings.TrimPrefix(l.Key, "loose")] = l
	}
	if len(looseByKey) != len(rep.Entries) {
		t.Fatalf("%d loose entries, %d sharded", len(looseByKey), len(rep.Entries))
	}
	shards := map[string][]byte{}
	for i, e := range rep.Entries {
		l, ok := looseByKey[e.Key]
		if !ok || e.SHA256 != l.SHA256 || e.Size != l.Size || e.Label != l.Label {
			t.Fatalf("entry %d: %+v, loose %+v", i, e, l)
		}
		if !strings.HasPrefix(e.Shard, "sh/shards/"+e.Split+"-") {
			t.Fatalf("entry %d in shard %q", i, e.Shard)
		}
		if shards[e.Shard] == nil {
			if shards[e.Shard], err = c.Get(ctx, e.Shard); err != nil {
				t.Fatal(err)
			}
		}
		want, err := c.Get(ctx, l.Key)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.GetRange(ctx, e.Shard, e.Offset, e.Size, e.Size); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("entry %d: ranged read %d bytes, %v; loose object %d bytes", i, len(got), err, len(want))
		}
	}
	for key, b := range shards {
		if len(b) > shardBytes+512+1024 {
			t.Errorf("shard %s is %d bytes, asked for about %d", key, len(b), shardBytes)
		}
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil || !strings.HasSuffix(h.Name, ".png") || strings.HasPrefix(h.Name, "sh/") {
				t.Fatalf("shard %s: member %v, %v", key, h, err)
			}
		}
	}
	list := func() []string {
		objs, err := c.List(ctx, "sh/")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			if o.Key != ReportKey("sh") { // rewritten by every run: it says what that run did
				out = append(out, o.Key+" "+o.ETag)
			}
		}
		return out
	}
	before := list()
	if len(before) != rep.Shards+3 {
		t.Fatalf("%d objects under sh/, want %d shards + 3 files", len(before), rep.Shards)
	}
	again, err := Ingest(ctx, c, src, Options{Prefix: "sh", Limit: Selection{PerSplit: map[string]int{"train": 60, "test": 60}}, ShardBytes: shardBytes, Force: true})
	if err != nil || again.Written != 0 || again.Skipped != 120 || again.Shards != rep.Shards || !slices.Equal(again.Entries, rep.Entries) {
		t.Fatalf("re-run: written %d skipped %d shards %d, %v", again.Written, again.Skipped, again.Shards, err)
	}
	if after := list(); !slices.Equal(after, before) {
		t.Fatalf("re-run changed the objects:\n%v\n%v", before, after)
	}

	d, err := Load(ctx, c, "sh")
	if err != nil || !slices.Equal(d.Entries, rep.Entries) {
		t.Fatalf("Load: %v", err)
	}
	if missing, err := Missing(ctx, c, d.Entries, 0); err != nil || len(missing) != 0 {
		t.Fatalf("Missing = %d, %v", len(missing), err)
	}
	first := d.Entries[0]
	cut := first.Offset + first.Size + 10 // in the second member's bytes
	storetest.Truncate(t, c, first.Shard, cut)
	if _, err := c.GetRange(ctx, first.Shard, d.Entries[1].Offset, d.Entries[1].Size, 1<<20); !errors.Is(err, store.ErrOutOfRange) {
		t.Fatalf("read past the cut = %v, want ErrOutOfRange", err)
	}
	missing, err := Missing(ctx, c, d.Entries, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []Entry
	for _, e := range d.Entries[1:] {
		if e.Shard == first.Shard {
			want = append(want, e)
		}
	}
	if len(want) == 0 || !slices.Equal(missing, want) {
		t.Fatalf("Missing = %d entries, want the %d past the cut", len(missing), len(want))
	}
}

// TestIngestShardsFailure: a shard that cannot be stored fails the sharded
// ingest with the store's error, and no manifest is written.
func TestIngestShardsFailure(t *testing.T) {
	src, err := OpenIDX(fixtures.MNISTDir(t), "mnist", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := failingStat{newMemBucket()}
	_, err = Ingest(t.Context(), b, src, Options{Prefix: "sh", Limit: Selection{PerSplit: map[string]int{"train": 100, "test": 100}}, ShardBytes: 2048, Concurrency: 2})
	if !errors.Is(err, store.ErrAccessDenied) {
		t.Fatalf("Ingest = %v, want ErrAccessDenied", err)
	}
	if _, ok := b.objs[ManifestKey("sh")]; ok || b.puts != 0 {
		t.Fatalf("a failed ingest stored %d objects", b.puts)
	}
}

// TestIngestShardsMixed ingests a class-sorted ImageFolder sharded, twice
// with different concurrency into two prefixes: the shards come out byte
// for byte the same, each holding many classes, and a re-run writes
// nothing. A loose ingest of the same source keeps source order.
func TestIngestShardsMixed(t *testing.T) {
	src, err := OpenImageFolder(fixtures.ClassSortedImageFolder(t, 10, 40, 4), 3)
	if err != nil {
		t.Fatal(err)
	}
	b, ctx := newMemBucket(), t.Context()
	const shardBytes = 16 << 10 // about 15 members of 1 KiB (header, tiny PNG, padding)
	a, err := Ingest(ctx, b, src, Options{Prefix: "a", ShardBytes: shardBytes, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	other, err := Ingest(ctx, b, src, Options{Prefix: "b", ShardBytes: shardBytes, Concurrency: 7})
	if err != nil {
		t.Fatal(err)
	}
	if a.Images != 400 || a.Shards < 20 || other.Shards != a.Shards {
		t.Fatalf("%d images in %d shards; other prefix %d shards", a.Images, a.Shards, other.Shards)
	}
	classes := map[string]map[int32]bool{}
	for i, e := range a.Entries {
		o := other.Entries[i]
		if o.Key != "b"+strings.TrimPrefix(e.Key, "a") || o.Shard != "b"+strings.TrimPrefix(e.Shard, "a") || o.Offset != e.Offset || o.SHA256 != e.SHA256 {
			t.Fatalf("entry %d: %+v under a, %+v under b", i, e, o)
		}
		if classes[e.Shard] == nil {
			classes[e.Shard] = map[int32]bool{}
			if !bytes.Equal(b.objs[e.Shard], b.objs[o.Shard]) {
				t.Fatalf("shard %s differs from %s", e.Shard, o.Shard)
			}
		}
		classes[e.Shard][e.Label] = true
	}
	for shard, cs := range classes {
		// Read class by class, a shard of ~15 members would hold 1 or 2.
		if len(cs) < 5 {
			t.Errorf("shard %s holds %d classes", shard, len(cs))
		}
	}
	puts := b.puts
	again, err := Ingest(ctx, b, src, Options{Prefix: "a", ShardBytes: shardBytes, Force: true})
	if err != nil || again.Written != 0 || again.Skipped != 400 || b.puts-puts != 4 || !slices.Equal(again.Entries, a.Entries) {
		t.Fatalf("re-run: written %d skipped %d, %d puts, %v", again.Written, again.Skipped, b.puts-puts, err)
	}
	loose, err := Ingest(ctx, b, src, Options{Prefix: "loose"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(loose.Entries, func(x, y Entry) int { return strings.Compare(x.Key, y.Key) }) {
		t.Fatal("a loose ingest did not keep source order")
	}
}
