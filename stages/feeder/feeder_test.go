package feeder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/store"
)

const sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func entries(n int, split string) []dataset.Entry {
	out := make([]dataset.Entry, n)
	for i := range out {
		out[i] = dataset.Entry{Key: fmt.Sprintf("%s/c%d/%04d.png", split, i%3, i), Label: int32(i % 3), Class: fmt.Sprint("c", i%3), Split: split, Size: 1, SHA256: sha}
	}
	return out
}

func mustNew(t *testing.T, cfg Config, es []dataset.Entry) *Feeder {
	t.Helper()
	return mustNewEntries(t, cfg, dataset.List(es))
}

func TestNewValidates(t *testing.T) {
	mixed := append(entries(2, "train"), entries(1, "test")...)
	bad := entries(2, "train")
	bad[1].Key = "../x"
	tests := []struct {
		name string
		cfg  Config
		es   []dataset.Entry
	}{
		{"no run id", Config{Epochs: 1}, entries(2, "train")},
		{"no epochs", Config{RunID: "r"}, entries(2, "train")},
		{"overflow", Config{RunID: "r", Epochs: 2, StartEpoch: 1<<32 - 1}, entries(2, "train")},
		{"no entries", Config{RunID: "r", Epochs: 1}, nil},
		{"mixed splits", Config{RunID: "r", Epochs: 1}, mixed},
		{"bad entry", Config{RunID: "r", Epochs: 1}, bad},
		{"negative max bytes", Config{RunID: "r", Epochs: 1, MaxBytes: -1}, entries(2, "train")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, dataset.List(tt.es)); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestOrderIsDeterministicPermutation(t *testing.T) {
	es := entries(1000, "train")
	a := mustNew(t, Config{RunID: "r", Seed: 42, Epochs: 1}, es)
	b := mustNew(t, Config{RunID: "other", Seed: 42, Epochs: 1}, es)
	c := mustNew(t, Config{RunID: "r", Seed: 43, Epochs: 1}, es)
	for _, n := range []int{1, 2, 7, 1000} {
		f := mustNew(t, Config{RunID: "r", Seed: 1, Epochs: 1}, es[:n])
		got := slices.Sorted(slices.Values(f.Order(3)))
		for i, v := range got {
			if v != i {
				t.Fatalf("n=%d: order is not a permutation: %v", n, got)
			}
		}
	}
	e0, e1 := a.Order(0), a.Order(1)
	switch {
	case !slices.Equal(e0, a.Order(0)) || !slices.Equal(e0, b.Order(0)):
		t.Fatal("same seed and epoch gave different orders")
	case slices.Equal(e0, e1):
		t.Fatal("epochs 0 and 1 share an order")
	case slices.Equal(e0, c.Order(0)):
		t.Fatal("seeds 42 and 43 share an order")
	case slices.IsSorted(e0):
		t.Fatal("order is not shuffled")
	}
	// Pinned: the order must not change with the Go version.
	small := mustNew(t, Config{RunID: "r", Seed: 7, Epochs: 1}, es[:8])
	if got, want := small.Order(0), []int{0, 7, 2, 4, 1, 6, 3, 5}; !slices.Equal(got, want) {
		t.Fatalf("Order(0) = %v, want the pinned %v", got, want)
	}
}

// record collects what Run emits.
type record struct {
	tasks  []messages.DecodeTask
	sizes  []int // tasks per message
	events []messages.Event
}

func (r *record) publish(_ context.Context, ts []messages.DecodeTask) error {
	r.tasks = append(r.tasks, ts...)
	r.sizes = append(r.sizes, len(ts))
	return nil
}

func (r *record) event(_ context.Context, e messages.Event) error {
	r.events = append(r.events, e)
	return nil
}

func TestRunEmitsEveryTaskOncePerEpoch(t *testing.T) {
	for _, batch := range []int{1, 8} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) { testRunEmitsEveryTaskOncePerEpoch(t, batch) })
	}
}

// testRunEmitsEveryTaskOncePerEpoch: messages of batch tasks, in the
// epoch's order, the last of an epoch holding the rest.
func testRunEmitsEveryTaskOncePerEpoch(t *testing.T, batch int) {
	es := entries(50, "train")
	f := mustNew(t, Config{RunID: "run1", Seed: 9, StartEpoch: 2, Epochs: 3, Batch: batch}, es)
	var r record
	if err := f.Run(t.Context(), r.publish, r.event, nil); err != nil {
		t.Fatal(err)
	}
	if len(r.tasks) != 150 || len(r.events) != 6 {
		t.Fatalf("%d tasks, %d events", len(r.tasks), len(r.events))
	}
	per := (50 + batch - 1) / batch
	for i, n := range r.sizes {
		if want := min(batch, 50-i%per*batch); n != want {
			t.Fatalf("message %d holds %d tasks, want %d", i, n, want)
		}
	}
	for k := range 3 {
		epoch := uint32(2 + k)
		start, end := r.events[2*k], r.events[2*k+1]
		if start.Kind != messages.EventEpochStart || end.Kind != messages.EventEpochEnd ||
			start.Epoch != epoch || end.Epoch != epoch || start.Count != 50 || end.Count != 50 || start.RunID != "run1" {
			t.Fatalf("epoch %d events %+v %+v", epoch, start, end)
		}
		seen := make([]bool, 50)
		order := f.Order(epoch)
		for n, task := range r.tasks[50*k : 50*(k+1)] {
			e := es[task.SampleID]
			if task.Epoch != epoch || task.RunID != "run1" || task.Key != e.Key || task.Label != e.Label || task.Split != "train" {
				t.Fatalf("task %+v for entry %+v", task, e)
			}
			if seen[task.SampleID] || int(task.SampleID) != order[n] {
				t.Fatalf("epoch %d: sample %d repeated or out of order", epoch, task.SampleID)
			}
			seen[task.SampleID] = true
		}
	}
}

// TestSplit: a message ends at batch tasks, or once its images' encoded
// bytes reach maxBytes, and holds one task at least however large.
func TestSplit(t *testing.T) {
	sizes := []int64{100, 100, 100, 500, 2000, 100, 100, 100, 100}
	tests := []struct {
		name     string
		batch    int
		maxBytes int64
		want     []int
	}{
		{"count alone", 4, 0, []int{4, 8, 9}},
		{"bytes end messages early", 4, 300, []int{3, 4, 5, 8, 9}},
		{"the task that reaches the bound ends its message", 8, 1000, []int{5, 9}},
		{"every task over the bound: one to a message", 8, 50, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"batch 1", 1, 1 << 20, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Split(len(sizes), tt.batch, tt.maxBytes, func(k int) int64 { return sizes[k] }); !slices.Equal(got, tt.want) {
				t.Errorf("Split = %v, want %v", got, tt.want)
			}
		})
	}
	if got := Split(0, 4, 0, nil); len(got) != 0 {
		t.Errorf("Split of nothing = %v", got)
	}
}

// TestRunCutsMessagesByBytes: the feeder sends fewer tasks to a message
// where the entries' images are large, every task once all the same.
func TestRunCutsMessagesByBytes(t *testing.T) {
	es := entries(40, "train")
	for i := range es {
		es[i].Size = int64(10 + 90*(i%2)) // 10 and 100 bytes
	}
	f := mustNew(t, Config{RunID: "r", Seed: 3, Epochs: 1, Batch: 16, MaxBytes: 250}, es)
	var r record
	if err := f.Run(t.Context(), r.publish, r.event, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	k := 0
	for i, n := range r.sizes {
		var bytes int64
		for _, task := range r.tasks[k : k+n] {
			seen[task.SampleID] = true
			bytes += es[task.SampleID].Size
		}
		last := es[r.tasks[k+n-1].SampleID].Size
		if n > 16 || bytes-last >= 250 || (n < 16 && bytes < 250 && k+n < len(r.tasks)) {
			t.Fatalf("message %d: %d tasks of %d bytes (last %d): want at most 16, ended by the task that reached 250", i, n, bytes, last)
		}
		k += n
	}
	if len(seen) != 40 || k != 40 {
		t.Fatalf("%d distinct of %d tasks, want 40", len(seen), k)
	}
}

func TestRunStops(t *testing.T) {
	errBus := errors.New("bus down")
	f := mustNew(t, Config{RunID: "r", Epochs: 2}, entries(10, "train"))
	var r record
	failAt := func(n int) PublishFunc {
		return func(ctx context.Context, tasks []messages.DecodeTask) error {
			if len(r.tasks) == n {
				return errBus
			}
			return r.publish(ctx, tasks)
		}
	}
	r = record{}
	if err := f.Run(t.Context(), failAt(4), r.event, nil); !errors.Is(err, errBus) || len(r.tasks) != 4 || len(r.events) != 1 {
		t.Fatalf("publish failure: %v after %d tasks %d events", err, len(r.tasks), len(r.events))
	}
	r = record{}
	failEvent := func(context.Context, messages.Event) error { return errBus }
	if err := f.Run(t.Context(), r.publish, failEvent, nil); !errors.Is(err, errBus) || len(r.tasks) != 0 {
		t.Fatalf("event failure: %v after %d tasks", err, len(r.tasks))
	}
	r = record{}
	ctx, cancel := context.WithCancel(t.Context())
	cancelAt := func(ctx context.Context, tasks []messages.DecodeTask) error {
		if len(r.tasks) == 3 {
			cancel()
		}
		return r.publish(ctx, tasks)
	}
	if err := f.Run(ctx, cancelAt, r.event, nil); !errors.Is(err, context.Canceled) || len(r.tasks) != 4 {
		t.Fatalf("cancel: %v after %d tasks", err, len(r.tasks))
	}
}

func BenchmarkOrder(b *testing.B) {
	f, err := New(Config{RunID: "r", Epochs: 1}, dataset.List(entries(50000, "train")))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		f.Order(uint32(i))
	}
}

// events simulates the run's events stream as Progress reads it: the
// feeder's EpochStart events, and the trainer's events a script places
// before a feed's EpochStart (atStart) or after its EpochEnd (atEnd), keyed
// by the feed's number (1 for the first). The stream ends after the last
// scripted feed, so a feeder that waits for more fails instead of hanging.
type events struct {
	record
	ch             chan messages.Event
	atStart, atEnd map[int][]messages.Event
	feeds          []uint32 // the epoch of each feed
}

func (s *events) progress(context.Context) (<-chan messages.Event, error) { return s.ch, nil }

func (s *events) event(ctx context.Context, ev messages.Event) error {
	_ = s.record.event(ctx, ev)
	switch ev.Kind {
	case messages.EventEpochStart:
		s.feeds = append(s.feeds, ev.Epoch)
		for _, e := range s.atStart[len(s.feeds)] {
			s.ch <- e
		}
		s.ch <- ev
	case messages.EventEpochEnd:
		for _, e := range s.atEnd[len(s.feeds)] {
			s.ch <- e
		}
		if last := slices.Max(slices.Collect(maps.Keys(s.atEnd))); len(s.feeds) >= last {
			close(s.ch)
		}
	}
	return nil
}

func trained(e uint32) messages.Event {
	return messages.Event{RunID: "run1", Kind: messages.EventEpochTrained, Epoch: e}
}

func started(e uint32) messages.Event {
	return messages.Event{RunID: "run1", Kind: messages.EventTrainerStarted, Epoch: e}
}

// TestRunFollowsTheTrainer: epochs 1 to 3, each fed after the one before
// was trained, and fed again when a restarted trainer (any but the first to
// start) started in it after its feed began.
func TestRunFollowsTheTrainer(t *testing.T) {
	ev := func(es ...messages.Event) []messages.Event { return es }
	first := map[int][]messages.Event{1: ev(started(1))} // the first trainer started before the feeder
	tests := []struct {
		name           string
		atStart, atEnd map[int][]messages.Event
		feeds          []uint32
	}{
		{"no restart", first, map[int][]messages.Event{1: ev(trained(1)), 2: ev(trained(2)), 3: ev(trained(3))}, []uint32{1, 2, 3}},
		{"the first trainer started after the feed began", nil,
			map[int][]messages.Event{1: ev(started(1), trained(1)), 2: ev(trained(2)), 3: ev(trained(3))}, []uint32{1, 2, 3}},
		{"other epochs' events are ignored", first,
			map[int][]messages.Event{1: ev(trained(3), started(0), started(5), trained(1)), 2: ev(trained(2)), 3: ev(trained(3))}, []uint32{1, 2, 3}},
		{"restarted mid-epoch", first,
			map[int][]messages.Event{1: ev(trained(1)), 2: ev(started(2)), 3: ev(trained(2)), 4: ev(trained(3))}, []uint32{1, 2, 2, 3}},
		{"restarted in the first epoch, no checkpoint", first,
			map[int][]messages.Event{1: ev(started(1)), 2: ev(trained(1)), 3: ev(trained(2)), 4: ev(trained(3))}, []uint32{1, 1, 2, 3}},
		{"two restarts before the re-feed: one re-feed", first,
			map[int][]messages.Event{1: ev(trained(1)), 2: ev(started(2), started(2)), 3: ev(trained(2)), 4: ev(trained(3))}, []uint32{1, 2, 2, 3}},
		{"restarted again during the re-feed", first,
			map[int][]messages.Event{1: ev(trained(1)), 2: ev(started(2)), 3: ev(started(2)), 4: ev(trained(2)), 5: ev(trained(3))}, []uint32{1, 2, 2, 2, 3}},
		{"restarted before the feed began: no re-feed", map[int][]messages.Event{1: ev(started(1)), 2: ev(started(2))},
			map[int][]messages.Event{1: ev(trained(1)), 2: ev(trained(2)), 3: ev(trained(3))}, []uint32{1, 2, 3}},
		{"checkpoint saved, EpochTrained lost", first,
			map[int][]messages.Event{1: ev(started(2)), 2: ev(trained(2)), 3: ev(trained(3))}, []uint32{1, 2, 3}},
		{"older checkpoint: back to its next epoch", first,
			map[int][]messages.Event{1: ev(trained(1)), 2: ev(trained(2)), 3: ev(started(2)), 4: ev(trained(2)), 5: ev(trained(3))}, []uint32{1, 2, 3, 2, 3}},
		{"last epoch checkpointed, EpochTrained lost", first,
			map[int][]messages.Event{1: ev(trained(1)), 2: ev(trained(2)), 3: ev(started(4))}, []uint32{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, batch := range []int{1, 3} {
				f := mustNew(t, Config{RunID: "run1", Seed: 1, StartEpoch: 1, Epochs: 3, Batch: batch}, entries(5, "train"))
				s := &events{ch: make(chan messages.Event, 64), atStart: tt.atStart, atEnd: tt.atEnd}
				if err := f.Run(t.Context(), s.record.publish, s.event, s.progress); err != nil {
					t.Fatalf("batch %d: %v after feeds of epochs %v", batch, err, s.feeds)
				}
				if !slices.Equal(s.feeds, tt.feeds) {
					t.Fatalf("batch %d: fed epochs %v, want %v", batch, s.feeds, tt.feeds)
				}
				// every feed is whole: each sample once, in the epoch's order
				for n, e := range s.feeds {
					order := f.Order(e)
					for k, task := range s.tasks[5*n : 5*(n+1)] {
						if task.Epoch != e || int(task.SampleID) != order[k] {
							t.Fatalf("batch %d: feed %d (epoch %d) task %d: %+v", batch, n+1, e, k, task)
						}
					}
				}
				if len(s.tasks) != 5*len(s.feeds) {
					t.Fatalf("batch %d: %d tasks for %d feeds of 5", batch, len(s.tasks), len(s.feeds))
				}
			}
		})
	}
}

// TestRunRestartedFeeder: a feeder restarted with --start-epoch 2 reads
// the run's events from the beginning, its predecessors' feeds of epoch 2
// and the trainer restarts after them included. Those restarts were
// answered by the feeders of their time; only a trainer start after this
// feeder's own feed began makes it feed the epoch again. It fed epoch 2
// once per earlier restart when every EpochStart counted as its own.
func TestRunRestartedFeeder(t *testing.T) {
	fedBy := func(e uint32, ref string) messages.Event {
		return messages.Event{RunID: "run1", Kind: messages.EventEpochStart, Epoch: e, Ref: ref}
	}
	history := []messages.Event{started(1), fedBy(1, "feeder/a"), trained(1), fedBy(2, "feeder/a"),
		started(2), fedBy(2, "feeder/b"), fedBy(2, "feeder/b"), started(2), fedBy(2, ""), started(2)}
	tests := []struct {
		name           string
		atStart, atEnd map[int][]messages.Event
		feeds          []uint32
	}{
		{"the new trainer started before the feed", map[int][]messages.Event{1: history},
			map[int][]messages.Event{1: {trained(2)}, 2: {trained(3)}}, []uint32{2, 3}},
		{"the new trainer started after the feed began", map[int][]messages.Event{1: history[:len(history)-1]},
			map[int][]messages.Event{1: {started(2)}, 2: {trained(2)}, 3: {trained(3)}}, []uint32{2, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, Config{RunID: "run1", Seed: 1, StartEpoch: 2, Epochs: 2}, entries(5, "train"))
			s := &events{ch: make(chan messages.Event, 64), atStart: tt.atStart, atEnd: tt.atEnd}
			if err := f.Run(t.Context(), s.record.publish, s.event, s.progress); err != nil {
				t.Fatalf("%v after feeds of epochs %v", err, s.feeds)
			}
			if !slices.Equal(s.feeds, tt.feeds) {
				t.Fatalf("fed epochs %v, want %v", s.feeds, tt.feeds)
			}
		})
	}
}

// TestRunFeedsAgainAfterALoss: a memory stream created again during a
// feed (Config.Generation changed) makes the feeder feed the epoch again;
// one created again after the epoch was trained does not. A generation
// that cannot be read before a feed is asked again.
func TestRunFeedsAgainAfterALoss(t *testing.T) {
	tests := []struct {
		name  string
		atEnd map[int][]messages.Event
		feeds []uint32
	}{
		{"lost during the feed", map[int][]messages.Event{1: nil, 2: {trained(1)}, 3: {trained(2)}}, []uint32{1, 1, 2}},
		{"lost after the epoch was trained", map[int][]messages.Event{1: {trained(1)}, 2: {trained(2)}}, []uint32{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &events{ch: make(chan messages.Event, 64), atEnd: tt.atEnd}
			gen, calls := "g1", 0
			generation := func(context.Context) (string, error) {
				if calls++; calls == 1 {
					return "", errors.New("bus away")
				}
				return gen, nil
			}
			event := func(ctx context.Context, ev messages.Event) error {
				if ev.Kind == messages.EventEpochEnd && len(s.feeds) == 1 {
					gen = "g2" // the streams were lost during the first feed
				}
				return s.event(ctx, ev)
			}
			f := mustNew(t, Config{RunID: "run1", Seed: 1, StartEpoch: 1, Epochs: 2, Generation: generation}, entries(5, "train"))
			if err := f.Run(t.Context(), s.record.publish, event, s.progress); err != nil {
				t.Fatalf("%v after feeds of epochs %v", err, s.feeds)
			}
			if !slices.Equal(s.feeds, tt.feeds) {
				t.Fatalf("fed epochs %v, want %v", s.feeds, tt.feeds)
			}
		})
	}
}

// TestRunStopsWhenTheEventsDo: an event stream that fails or ends while the
// feeder waits stops the run with an error naming the epoch.
func TestRunStopsWhenTheEventsDo(t *testing.T) {
	f := mustNew(t, Config{RunID: "run1", StartEpoch: 4, Epochs: 3}, entries(5, "train"))
	errBus := errors.New("bus down")
	var r record
	if err := f.Run(t.Context(), r.publish, r.event, func(context.Context) (<-chan messages.Event, error) { return nil, errBus }); !errors.Is(err, errBus) || len(r.tasks) != 0 {
		t.Fatalf("subscribe failure: %v after %d tasks", err, len(r.tasks))
	}
	s := &events{ch: make(chan messages.Event, 64), atEnd: map[int][]messages.Event{1: {trained(4)}, 2: nil}}
	if err := f.Run(t.Context(), s.record.publish, s.event, s.progress); err == nil || !strings.Contains(err.Error(), "epoch 5") {
		t.Fatalf("stream ended while waiting for epoch 5: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r = record{}
	if err := f.Run(ctx, r.publish, r.event, func(context.Context) (<-chan messages.Event, error) { return make(chan messages.Event), nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

// TestTableFeedsAsList feeds the same training split from a
// dataset.Table, as `supflow feed` does, and from a dataset.List, and
// gets the same tasks, loose and sharded members alike.
func TestTableFeedsAsList(t *testing.T) {
	ctx := t.Context()
	s := storetest.New(t)
	es := append(entries(40, "train"), entries(10, "test")...)
	for i := range es {
		es[i].Key = "ds/" + es[i].Key
		if i%3 == 0 {
			es[i].Shard, es[i].Offset = "ds/shards/000.tar", int64(512*i)
		}
	}
	var m bytes.Buffer
	if err := dataset.WriteManifest(&m, es); err != nil {
		t.Fatal(err)
	}
	info := `{"source":"imagefolder","format":"png","height":0,"width":0,"channels":3,"mean":[0.5,0.5,0.5],"std":[0.2,0.2,0.2],"stats_split":"train","counts":{"train":40,"test":10},"classes":3}`
	for key, data := range map[string][]byte{"ds/classes.json": []byte(`["c0","c1","c2"]`), "ds/info.json": []byte(info), "ds/manifest.jsonl": m.Bytes()} {
		if err := s.Put(ctx, key, data, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := dataset.LoadTable(ctx, s, "ds", "train")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{RunID: "r", Seed: 9, Epochs: 1, Batch: 7}
	fromTable, fromList := mustNewEntries(t, cfg, tab), mustNew(t, cfg, es[:40])
	for epoch := range uint32(3) {
		var a, b []messages.DecodeTask
		for _, f := range []struct {
			f   *Feeder
			out *[]messages.DecodeTask
		}{{fromTable, &a}, {fromList, &b}} {
			err := f.f.RunEpoch(ctx, epoch, func(_ context.Context, ts []messages.DecodeTask) error {
				*f.out = append(*f.out, ts...)
				return nil
			}, func(context.Context, messages.Event) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(a, b) || len(a) != 40 {
			t.Fatalf("epoch %d: %d tasks from the table, %d from the list, not the same", epoch, len(a), len(b))
		}
	}
}

func mustNewEntries(t *testing.T, cfg Config, es dataset.Entries) *Feeder {
	t.Helper()
	f, err := New(cfg, es)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
