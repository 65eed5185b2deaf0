package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/supflow/supflow/store"
)

// Statter is what Missing needs; *store.Client has it.
type Statter interface {
	Stat(ctx context.Context, key string) (store.ObjectInfo, error)
}

// Missing stats every object the entries name (each shard once),
// concurrency at a time (default 8), and returns the entries that cannot
// be read, in manifest order: their object does not exist, or their shard
// ends before them (a truncated shard, a wrong offset). Those are
// reported, not errors; any other failure is an error.
func Missing(ctx context.Context, b Statter, entries []Entry, concurrency int) ([]Entry, error) {
	if concurrency <= 0 {
		concurrency = 8
	}
	index := make(map[string]int, len(entries))
	var keys []string
	for _, e := range entries {
		if _, ok := index[e.Object()]; !ok {
			index[e.Object()] = len(keys)
			keys = append(keys, e.Object())
		}
	}
	sizes := make([]int64, len(keys)) // -1: not found
	err := parallel(ctx, len(keys), concurrency, func(ctx context.Context, i int) error {
		info, err := b.Stat(ctx, keys[i])
		switch {
		case errors.Is(err, store.ErrNotFound):
			sizes[i] = -1
		case err != nil:
			return fmt.Errorf("dataset: check %s: %w", keys[i], err)
		default:
			sizes[i] = info.Size
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		size := sizes[index[e.Object()]]
		if size < 0 || e.Shard != "" && e.Offset+e.Size > size {
			out = append(out, e)
		}
	}
	return out, nil
}

// parallel calls fn for every i in [0, n), workers calls at a time. The
// first error stops the work: ctx, which fn is given, is cancelled with it,
// no further i is handed out, and parallel returns it once the calls in
// flight returned (or ctx's own cause, when the caller's ended first).
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// Getter is what Load needs; *store.Client has it.
type Getter interface {
	Get(ctx context.Context, key string) ([]byte, error)
	// Stat and GetRange read the manifest in pieces (see manifestReader).
	Statter
	GetRange(ctx context.Context, key string, off, n, max int64) ([]byte, error)
}

// Dataset is a data set as read back from the bucket.
type Dataset struct {
	Entries []Entry
	Classes []string
	Info    Info
}

// Split returns the entries of one split, in manifest order. A split
// written in one run of lines, as Ingest and Index write them, is returned
// as a slice of d.Entries (capacity capped, so appending to it copies),
// not a copy: ImageNet's training split is 133 MB of Entry structs.
// Callers must not modify the entries.
func (d Dataset) Split(name string) []Entry {
	lo := slices.IndexFunc(d.Entries, func(e Entry) bool { return e.Split == name })
	if lo < 0 {
		return nil
	}
	hi := lo
	for hi < len(d.Entries) && d.Entries[hi].Split == name {
		hi++
	}
	if !slices.ContainsFunc(d.Entries[hi:], func(e Entry) bool { return e.Split == name }) {
		return d.Entries[lo:hi:hi]
	}
	var out []Entry
	for _, e := range d.Entries {
		if e.Split == name {
			out = append(out, e)
		}
	}
	return out
}

// Take returns at most limit entries of split (all of them when limit is
// 0), class-stratified and seeded, in manifest order: of a sharded split
// a stretch of shard neighbours (selectStretch), of a loose one Select's
// pick (see pick).
func (d Dataset) Take(split string, limit int, seed uint64) []Entry {
	e := d.Split(split)
	labels := make([]int, len(e))
	sharded := false
	for i := range e {
		labels[i] = int(e[i].Label)
		sharded = sharded || e[i].Shard != ""
	}
	idx := pick(labels, sharded, limit, seed)
	if len(idx) == len(e) {
		return e
	}
	out := make([]Entry, len(idx))
	for i, j := range idx {
		out[i] = e[j]
	}
	return out
}

// Load reads the manifest, classes.json and info.json under prefix and
// checks that they agree. Every entry's key must lie under prefix (see
// UnderPrefix), so nothing downstream ever fetches, caches or writes outside
// the data set because of a manifest line.
func Load(ctx context.Context, g Getter, prefix string) (Dataset, error) {
	splits := map[string]string{}
	return load(ctx, g, prefix, func(d *Dataset, maxEntries int) {
		n := 0
		for _, c := range d.Info.Counts {
			n += max(c, 0)
		}
		// Entries of the size info.json announces, so that appending does
		// not copy them as they grow.
		d.Entries = make([]Entry, 0, min(n, maxEntries))
	}, func(d *Dataset, e Entry) error {
		// e's strings are borrowed: keep copies, and one copy of each
		// class and split name, not one per entry.
		e.Key, e.SHA256, e.Shard = strings.Clone(e.Key), strings.Clone(e.SHA256), strings.Clone(e.Shard)
		e.Class = d.Classes[e.Label]
		s, ok := splits[e.Split]
		if !ok {
			s = strings.Clone(e.Split)
			splits[s] = s
		}
		e.Split = s
		d.Entries = append(d.Entries, e)
		return nil
	})
}

// load reads classes.json and info.json into a Dataset, calls start with
// it and the most entries the manifest can hold, then add with each
// entry of the manifest, checked, in order: its strings are borrowed
// (scanManifest), add must copy what it keeps.
func load(ctx context.Context, g Getter, prefix string, start func(d *Dataset, maxEntries int), add func(*Dataset, Entry) error) (Dataset, error) {
	var d Dataset
	raw, err := g.Get(ctx, ClassesKey(prefix))
	if err != nil {
		return Dataset{}, fmt.Errorf("dataset: load: %w", err)
	}
	if d.Classes, err = ReadClasses(bytes.NewReader(raw)); err != nil {
		return Dataset{}, err
	}
	if raw, err = g.Get(ctx, InfoKey(prefix)); err != nil {
		return Dataset{}, fmt.Errorf("dataset: load: %w", err)
	}
	if d.Info, err = ReadInfo(bytes.NewReader(raw)); err != nil {
		return Dataset{}, err
	}
	// A manifest is read in pieces, never whole: ImageNet's is over 200
	// MB, more than store.max_object_bytes and than the entries it holds.
	key := ManifestKey(prefix)
	info, err := g.Stat(ctx, key)
	if err != nil {
		return Dataset{}, fmt.Errorf("dataset: load: %w", err)
	}
	start(&d, int(info.Size/minLine))
	err = scanManifest(&manifestReader{ctx: ctx, g: g, key: key, size: info.Size}, true, func(e Entry) error {
		if err := UnderPrefix(e.Key, prefix); err != nil {
			return fmt.Errorf("%w: %w", ErrManifest, err)
		}
		if e.Shard != "" {
			if err := UnderPrefix(e.Shard, prefix); err != nil {
				return fmt.Errorf("%w: shard: %w", ErrManifest, err)
			}
		}
		if int(e.Label) >= len(d.Classes) || d.Classes[e.Label] != e.Class {
			return fmt.Errorf("%w: label %d class %q disagrees with classes.json", ErrManifest, e.Label, e.Class)
		}
		return add(&d, e)
	})
	if err != nil {
		return Dataset{}, err
	}
	// Pieces of a manifest rewritten between two GETs would mix (an
	// object is replaced whole, so one GET never sees that).
	if now, err := g.Stat(ctx, key); err != nil {
		return Dataset{}, fmt.Errorf("dataset: load: %w", err)
	} else if now.Size != info.Size || now.ETag != info.ETag || !now.LastModified.Equal(info.LastModified) {
		return Dataset{}, fmt.Errorf("%w: %s was rewritten while it was read; load again", ErrManifest, key)
	}
	return d, nil
}

// minLine is the shortest manifest line: {"key":"k","label":0,"class":"c","split":"s","size":0} and its newline.
const minLine = 58

// manifestChunk is how much of the manifest one GET reads (a variable
// for the tests, which cut lines across GETs).
var manifestChunk int64 = 8 << 20

// manifestReader reads an object of size bytes in ranged GETs of
// manifestChunk bytes, each retried by the Getter as any GET.
type manifestReader struct {
	ctx       context.Context
	g         Getter
	key       string
	size, off int64
	buf       []byte
}

func (r *manifestReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		n := min(manifestChunk, r.size-r.off)
		b, err := r.g.GetRange(r.ctx, r.key, r.off, n, n)
		if err != nil {
			return 0, err
		}
		r.buf, r.off = b, r.off+n
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
