package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
}

// Dataset is a data set as read back from the bucket.
type Dataset struct {
	Entries []Entry
	Classes []string
	Info    Info
}

// Split returns the entries of one split, in manifest order.
func (d Dataset) Split(name string) []Entry {
	var out []Entry
	for _, e := range d.Entries {
		if e.Split == name {
			out = append(out, e)
		}
	}
	return out
}

// Take returns at most limit entries of split (all of them when limit is
// 0), chosen by Select with seed (class-stratified), in manifest order.
func (d Dataset) Take(split string, limit int, seed uint64) []Entry {
	e := d.Split(split)
	labels := make([]int, len(e))
	for i := range e {
		labels[i] = int(e[i].Label)
	}
	idx := Select(labels, limit, seed)
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
	if raw, err = g.Get(ctx, ManifestKey(prefix)); err != nil {
		return Dataset{}, fmt.Errorf("dataset: load: %w", err)
	}
	err = ScanManifest(bytes.NewReader(raw), func(e Entry) error {
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
		d.Entries = append(d.Entries, e)
		return nil
	})
	if err != nil {
		return Dataset{}, err
	}
	return d, nil
}
