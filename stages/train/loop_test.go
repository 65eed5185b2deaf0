package train

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/messages"
)

// fakeStepper records the samples of every step by decoding the first pixel
// of each view, which the test sets to the sample id.
type fakeStepper struct {
	mu      sync.Mutex
	batches [][]int // sample ids per step
	epochs  []int
	fail    error
}

func (f *fakeStepper) Step(_ context.Context, b engine.Batch) (engine.Stats, error) {
	if f.fail != nil {
		return engine.Stats{}, f.fail
	}
	if err := b.Validate(); err != nil {
		return engine.Stats{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	view := b.Height * b.Width * b.Channels
	ids := make([]int, b.Size)
	for i := range ids {
		ids[i] = int(b.Pixels[i*view])
		if b.Pixels[(b.Size+i)*view] != byte(ids[i]) { // view 1 of the same sample
			panic("views are not view-major")
		}
	}
	f.batches = append(f.batches, ids)
	f.epochs = append(f.epochs, b.Epoch)
	return engine.Stats{Loss: 1, Epoch: b.Epoch}, nil
}

type acks struct {
	mu           sync.Mutex
	acked, naked map[uint64]int
	rejected     map[uint64]error
}

func newAcks() *acks {
	return &acks{acked: map[uint64]int{}, naked: map[uint64]int{}, rejected: map[uint64]error{}}
}

func (a *acks) delivery(run string, epoch uint32, id uint64, h int) Delivery {
	px := make([]byte, 2*h*h)
	for i := range px {
		px[i] = byte(id)
	}
	key := uint64(epoch)<<32 | id
	return Delivery{
		Msg: messages.ViewGroup{RunID: run, Epoch: epoch, SampleID: id, Label: int32(id % 3), NViews: 2, Height: uint32(h), Width: uint32(h), Channels: 1, Pixels: px},
		Ack: func() error { a.mu.Lock(); a.acked[key]++; a.mu.Unlock(); return nil },
		Nak: func() error { a.mu.Lock(); a.naked[key]++; a.mu.Unlock(); return nil },
		Reject: func(err error) error {
			a.mu.Lock()
			a.rejected[key] = err
			a.mu.Unlock()
			return nil
		},
	}
}

func newTestLoop(t *testing.T, s Stepper, epochs int, h hooks) *loop {
	t.Helper()
	st, err := newLoop(loopConfig{RunID: "r", BatchSize: 4, Views: 2, Height: 2, Width: 2, Channels: 1, Epochs: epochs}, s, h)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestExactlyOnceWithDuplicatesDropsAndPartialBatch(t *testing.T) {
	f := &fakeStepper{}
	a := newAcks()
	var epochStats []EpochStats
	st := newTestLoop(t, f, 2, hooks{Epoch: func(_ context.Context, e int, s EpochStats) error {
		epochStats = append(epochStats, s)
		return nil
	}})
	in := make(chan Delivery, 100)
	ctl := make(chan Control, 10)
	for e := uint32(1); e <= 2; e++ {
		ctl <- Control{Epoch: int(e), EpochSize: 10}
		ctl <- Control{Epoch: int(e), Dropped: true, SampleID: 9}
		for id := uint64(0); id < 9; id++ {
			in <- a.delivery("r", e, id, 2)
			if id%3 == 0 {
				in <- a.delivery("r", e, id, 2) // redelivery
			}
		}
		in <- a.delivery("other", e, 1, 2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.run(ctx, in, ctl); err != nil {
		t.Fatal(err)
	}
	seen := map[[2]int]int{}
	for i, b := range f.batches {
		for _, id := range b {
			seen[[2]int{f.epochs[i], id}]++
		}
	}
	for e := 1; e <= 2; e++ {
		for id := 0; id < 9; id++ {
			if seen[[2]int{e, id}] != 1 {
				t.Errorf("epoch %d sample %d stepped %d times", e, id, seen[[2]int{e, id}])
			}
		}
	}
	if len(f.batches) != 6 || len(f.batches[2]) != 1 {
		t.Errorf("batches = %v, want 4+4+1 per epoch", f.batches)
	}
	for key, n := range a.acked {
		if n < 1 {
			t.Errorf("message %x not acked", key)
		}
	}
	if len(epochStats) != 2 || epochStats[0].Samples != 9 || epochStats[0].Dropped != 1 || epochStats[0].Duplicates != 3 {
		t.Errorf("epoch stats = %+v", epochStats)
	}
	for _, s := range epochStats {
		if got, dropped := FormatIDs(s.TrainedIDs), FormatIDs(s.DroppedIDs); got != "0-8" || dropped != "9" {
			t.Errorf("trained ids %q, dropped ids %q; want 0-8 and 9", got, dropped)
		}
	}
}

func TestStepFailureNaksHeldMessages(t *testing.T) {
	f := &fakeStepper{fail: errors.New("boom")}
	a := newAcks()
	st := newTestLoop(t, f, 1, hooks{})
	in := make(chan Delivery, 10)
	for id := uint64(0); id < 4; id++ {
		in <- a.delivery("r", 1, id, 2)
	}
	err := st.run(context.Background(), in, make(chan Control))
	if err == nil || len(a.naked) != 4 || len(a.acked) != 0 {
		t.Fatalf("err = %v, naked %d, acked %d", err, len(a.naked), len(a.acked))
	}
}

func TestWrongShapeIsRejectedAndCounted(t *testing.T) {
	f := &fakeStepper{}
	a := newAcks()
	st := newTestLoop(t, f, 1, hooks{})
	in := make(chan Delivery, 10)
	ctl := make(chan Control, 1)
	ctl <- Control{Epoch: 1, EpochSize: 2}
	in <- a.delivery("r", 1, 0, 2)
	in <- a.delivery("r", 1, 1, 3) // 3x3 views, stage wants 2x2
	if err := st.run(context.Background(), in, ctl); err != nil {
		t.Fatal(err)
	}
	if err := a.rejected[1<<32|1]; !errors.Is(err, messages.ErrPermanent) {
		t.Fatalf("rejected = %v", a.rejected)
	}
	if len(f.batches) != 1 || len(f.batches[0]) != 1 {
		t.Fatalf("batches = %v", f.batches)
	}
}

func TestCancelNaksPending(t *testing.T) {
	a := newAcks()
	st := newTestLoop(t, &fakeStepper{}, 1, hooks{})
	in := make(chan Delivery, 10)
	in <- a.delivery("r", 1, 0, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := st.run(ctx, in, make(chan Control)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if len(a.naked) != 1 {
		t.Fatalf("naked = %v", a.naked)
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []loopConfig{
		{BatchSize: 0, Views: 2, Height: 2, Width: 2, Channels: 1, Epochs: 1},
		{BatchSize: 2, Views: 2, Height: 2, Width: 2, Channels: 2, Epochs: 1},
		{BatchSize: 2, Views: 2, Height: 2, Width: 2, Channels: 1, Epochs: 0},
	} {
		if _, err := newLoop(cfg, &fakeStepper{}, hooks{}); err == nil {
			t.Errorf("newLoop(%+v) accepted", cfg)
		}
	}
}
