package feeder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
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
	f, err := New(cfg, es)
	if err != nil {
		t.Fatal(err)
	}
	return f
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, tt.es); !errors.Is(err, ErrInvalidConfig) {
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
	f, err := New(Config{RunID: "r", Epochs: 1}, entries(50000, "train"))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		f.Order(uint32(i))
	}
}

// TestRunWaitsForEachEpochToBeTrained: with trained set, epoch e+1 starts
// only after trained(e) returned, and its failure stops the run.
func TestRunWaitsForEachEpochToBeTrained(t *testing.T) {
	f := mustNew(t, Config{RunID: "run1", Seed: 1, StartEpoch: 4, Epochs: 3}, entries(5, "train"))
	var r record
	var waited []uint32
	errBus := errors.New("bus down")
	trained := func(_ context.Context, e uint32) error {
		if n := len(r.tasks); n != 5*(len(waited)+1) {
			t.Errorf("waiting for epoch %d after %d tasks", e, n)
		}
		waited = append(waited, e)
		if e == 5 {
			return errBus
		}
		return nil
	}
	if err := f.Run(t.Context(), r.publish, r.event, trained); !errors.Is(err, errBus) {
		t.Fatalf("run: %v", err)
	}
	if len(waited) != 2 || waited[0] != 4 || waited[1] != 5 || len(r.tasks) != 10 {
		t.Fatalf("waited for %v, published %d tasks", waited, len(r.tasks))
	}
}
