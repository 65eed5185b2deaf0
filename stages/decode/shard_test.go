package decode_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/store"
)

// TestShardedDataset decodes a sharded ingest through the store client:
// every sample's pixels equal those of the same image ingested loose; after
// a shard is truncated, and with a manifest entry pointing past a shard's
// end, exactly those samples fail, each permanently and naming its shard
// and place, while every other sample still decodes.
func TestShardedDataset(t *testing.T) {
	c, ctx := storetest.New(t), t.Context()
	src, err := dataset.OpenIDX(fixtures.MNISTDir(t), "mnist", nil)
	if err != nil {
		t.Fatal(err)
	}
	loose, err := dataset.Ingest(ctx, c, src, dataset.Options{Prefix: "loose", Limit: dataset.Selection{PerSplit: map[string]int{"train": 40, "test": 40}}})
	if err != nil {
		t.Fatal(err)
	}
	sharded, err := dataset.Ingest(ctx, c, src, dataset.Options{Prefix: "sh", Limit: dataset.Selection{PerSplit: map[string]int{"train": 40, "test": 40}}, ShardBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s, err := decode.New(decode.Config{}, decode.Deps{Objects: c,
		IsNotFound:   func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		IsTooLarge:   func(err error) bool { return errors.Is(err, store.ErrTooLarge) },
		IsOutOfRange: func(err error) bool { return errors.Is(err, store.ErrOutOfRange) },
	})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll := func(entries []dataset.Entry) ([]messages.Image, []error) {
		imgs, errs := make([]messages.Image, len(entries)), make([]error, len(entries))
		for i, e := range entries {
			imgs[i], errs[i] = s.Handle(ctx, e.Task("r", 1, uint64(i)))
		}
		return imgs, errs
	}
	want, errs := decodeAll(loose.Entries)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	wantByKey := map[string]messages.Image{} // the sharded entries are in ingest's mixed order
	for i, e := range loose.Entries {
		wantByKey["sh"+strings.TrimPrefix(e.Key, "loose")] = want[i]
	}
	got, errs := decodeAll(sharded.Entries)
	if len(got) != len(wantByKey) {
		t.Fatalf("%d sharded entries, %d loose", len(got), len(wantByKey))
	}
	for i, e := range sharded.Entries {
		w, ok := wantByKey[e.Key]
		if errs[i] != nil || !ok || !bytes.Equal(got[i].Pixels, w.Pixels) || got[i].Label != w.Label {
			t.Fatalf("sample %d (%s in %s): %v", i, e.Key, e.Shard, errs[i])
		}
	}

	entries := append([]dataset.Entry(nil), sharded.Entries...)
	first := entries[0]
	storetest.Truncate(t, c, first.Shard, first.Offset+first.Size+1)
	last := len(entries) - 1
	entries[last].Offset = 1 << 30 // past its shard's end
	_, errs = decodeAll(entries)
	for i, e := range entries {
		bad := i == last || i > 0 && e.Shard == first.Shard
		switch {
		case bad && !(errors.Is(errs[i], decode.ErrOutOfRange) && errors.Is(errs[i], messages.ErrPermanent)):
			t.Errorf("sample %d: %v, want a permanent ErrOutOfRange", i, errs[i])
		case !bad && errs[i] != nil:
			t.Errorf("sample %d: %v", i, errs[i])
		}
	}
}
