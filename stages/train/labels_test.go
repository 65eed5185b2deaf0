package train

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/model"
	"github.com/supflow/supflow/optim"
)

// TestLabelOutsideClassesIsDeadLettered is the regression test of one view
// group labelled 2147483647 stopping a method=ce trainer (exit 1): the
// engine refused the whole batch. With the real engine, a view group whose
// label lies outside [0, Classes) (a huge one, -1 "unlabelled", the class
// count itself) is dead-lettered at the edge and counted as dropped, and
// the epoch trains the rest.
func TestLabelOutsideClassesIsDeadLettered(t *testing.T) {
	eng, err := engine.New(engine.Config{
		Model: engine.ModelConfig{Config: model.Config{Widths: []int{4, 8, 8, 16}, Blocks: []int{1, 1, 1, 1}, InChannels: 1, FeatDim: 16}},
		Train: engine.TrainConfig{
			Method:   engine.MethodCE,
			Optim:    optim.Config{Momentum: 0.9},
			Schedule: optim.Schedule{BaseLR: 0.1, Epochs: 1},
		},
		Classes: 4,
		Mean:    []float64{0.5},
		Std:     []float64{0.25},
		Seed:    1,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, b := storetest.New(t), newFakeBus()
	cfg := Config{RunID: "r", BatchSize: 4, Views: 2, Size: 8, Channels: 1, Epochs: 1, CheckpointEvery: 1, Classes: eng.LabelClasses()}
	s, err := New(t.Context(), cfg, Deps{Engine: eng, Store: st, Events: b, DeadLetters: b})
	if err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	labels := []int32{0, 1, math.MaxInt32, 2, 3, -1, 4, 1, 0}
	b.starts <- messages.Event{RunID: "r", Kind: messages.EventEpochStart, Epoch: 1, Count: uint64(len(labels))}
	in := make(chan Delivery, len(labels))
	for id, l := range labels {
		d := a.delivery("r", 1, uint64(id), 8)
		d.Msg.Label = l
		in <- d
	}
	if _, err := s.Run(t.Context(), in); err != nil {
		t.Fatalf("trainer stopped: %v", err)
	}
	for id, l := range labels {
		err := a.rejected[1<<32|uint64(id)]
		if bad := l < 0 || l >= 4; bad != (err != nil) || bad && !errors.Is(err, messages.ErrPermanent) {
			t.Errorf("sample %d, label %d: rejected with %v", id, l, err)
		}
	}
	var trained *messages.Event
	for _, ev := range b.published {
		if ev.Kind == messages.EventEpochTrained {
			trained = &ev
		}
	}
	if trained == nil || trained.Count != 6 {
		t.Errorf("epoch trained event %+v, want 6 samples trained", trained)
	}
}

// TestLabelClassesOfEachMethod: the label range a trainer needs is the
// data set's classes for the methods that use labels, none for simclr
// (which takes -1 "unlabelled" and anything else).
func TestLabelClassesOfEachMethod(t *testing.T) {
	for method, want := range map[string]int{engine.MethodCE: 10, engine.MethodSupCon: 10, engine.MethodSimCLR: 0} {
		eng, err := engine.New(engine.Config{
			Model:   engine.ModelConfig{Config: model.Config{Widths: []int{4, 8, 8, 16}, Blocks: []int{1, 1, 1, 1}, InChannels: 1, FeatDim: 16}},
			Train:   engine.TrainConfig{Method: method, Schedule: optim.Schedule{BaseLR: 0.1, Epochs: 1}},
			Classes: 10, Mean: []float64{0.5}, Std: []float64{0.25},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := eng.LabelClasses(); got != want {
			t.Errorf("%s: LabelClasses() = %d, want %d", method, got, want)
		}
	}
}

// TestSampleIDOutsideTheEpoch: a sample id outside [0, epoch size), from a
// dead letter or a view group (forged, or malformed in a way that still
// names one), does not count toward the epoch's completion: the epoch
// ends when every real sample is accounted for, and the view group is
// dead-lettered. It ended the epoch one sample early, and that sample,
// arriving after, was acknowledged as a redelivery and never trained.
func TestSampleIDOutsideTheEpoch(t *testing.T) {
	for _, first := range []string{"size", "bogus"} {
		f := &fakeStepper{}
		a := newAcks()
		var stats []EpochStats
		st := newTestLoop(t, f, 1, hooks{Epoch: func(_ context.Context, _ int, s EpochStats) error {
			stats = append(stats, s)
			return nil
		}})
		in := make(chan Delivery, 10)
		ctl := make(chan Control, 4)
		bogus := []Control{{Epoch: 1, Dropped: true, SampleID: 1 << 40}, {Epoch: 1, Dropped: true, SampleID: 4}}
		size := Control{Epoch: 1, EpochSize: 4}
		if first == "size" {
			ctl <- size
			for _, c := range bogus {
				ctl <- c
			}
		} else {
			for _, c := range bogus {
				ctl <- c
			}
			ctl <- size
		}
		done := make(chan error, 1)
		go func() { done <- st.run(t.Context(), in, ctl) }()
		for id := range uint64(3) {
			in <- a.delivery("r", 1, id, 2)
		}
		time.Sleep(50 * time.Millisecond) // the loop has seen them and the controls
		in <- a.delivery("r", 1, 7, 2)    // outside the epoch
		in <- a.delivery("r", 1, 3, 2)    // the last real sample
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(stats) != 1 || FormatIDs(stats[0].TrainedIDs) != "0-3" {
			t.Fatalf("%s first: epoch stats %+v, want samples 0-3 trained", first, stats)
		}
	}
}
