package train

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/metrics"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/store"
)

// fakeEngine is a fakeStepper whose state is the number of steps taken.
type fakeEngine struct {
	fakeStepper
	loaded int
}

func (f *fakeEngine) Save(epoch int, _ map[string]string) ([]byte, error) {
	return []byte(strconv.Itoa(epoch)), nil
}

func (f *fakeEngine) Load(b []byte) (checkpoint.Meta, error) {
	e, err := strconv.Atoi(string(b))
	f.loaded = e
	return checkpoint.Meta{Epoch: e}, err
}

func (f *fakeEngine) Params() int64 { return 42 }

// fakeBus plays the feeder's events and the dead-letter stream.
type fakeBus struct {
	mu        sync.Mutex
	published []messages.Event
	starts    chan messages.Event
	dead      chan messages.DeadLetter
}

func newFakeBus() *fakeBus {
	return &fakeBus{starts: make(chan messages.Event, 8), dead: make(chan messages.DeadLetter, 8)}
}

func (b *fakeBus) Publish(_ context.Context, ev messages.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, ev)
	return nil
}

func (b *fakeBus) Subscribe(context.Context, string, ...messages.EventKind) (<-chan messages.Event, error) {
	return b.starts, nil
}

func (b *fakeBus) DeadLetters(context.Context) (<-chan messages.DeadLetter, error) {
	return b.dead, nil
}

// TestStageEpochsCheckpointsAndResume: two epochs of five samples, one of
// them dead-lettered upstream in epoch 1, are trained and checkpointed;
// EpochTrained carries the trained count, PretrainDone the last
// checkpoint; a resumed stage starts after the checkpoint's epoch.
func TestStageEpochsCheckpointsAndResume(t *testing.T) {
	eng, st, b := &fakeEngine{}, storetest.New(t), newFakeBus()
	cfg := Config{RunID: "r", Arch: "resnet18", BatchSize: 4, Views: 2, Size: 2, Channels: 1, Epochs: 2, CheckpointEvery: 1}
	reg := metrics.NewRegistry()
	m, err := metrics.NewTrainer(reg, "r")
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Engine: eng, Store: st, Events: b, DeadLetters: b, Metrics: m}
	s, err := New(t.Context(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	a := newAcks()
	in := make(chan Delivery, 16)
	for e := uint32(1); e <= 2; e++ {
		b.starts <- messages.Event{RunID: "r", Kind: messages.EventEpochStart, Epoch: e, Count: 5}
		for id := uint64(0); id < 5; id++ {
			if e == 1 && id == 3 {
				continue
			}
			in <- a.delivery("r", e, id, 2)
		}
	}
	task, err := messages.MarshalDecodeTask(messages.DecodeTask{RunID: "r", Epoch: 1, SampleID: 3, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	b.dead <- messages.DeadLetter{Payload: task, SourceTopic: messages.TopicDecodeTasks, Reason: "corrupt"}
	key, err := s.Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if want := runs.Checkpoint("r", runs.Last); key != want {
		t.Fatalf("key %q, want %q", key, want)
	}
	for _, k := range []string{runs.Checkpoint("r", "epoch-1"), runs.Checkpoint("r", "epoch-2"), key} {
		if _, err := st.Get(t.Context(), k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	var kinds []string
	for _, ev := range b.published {
		kinds = append(kinds, ev.Kind.String()+":"+strconv.Itoa(int(ev.Epoch))+":"+strconv.Itoa(int(ev.Count)))
	}
	want := []string{"trainer_started:1:0", "epoch_trained:1:4", "epoch_trained:2:5", "pretrain_done:2:0"}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
	raw, err := st.Get(t.Context(), runs.Key("r", runs.Curves))
	if err != nil {
		t.Fatal(err)
	}
	var c report.Curves
	if err := json.Unmarshal(raw, &c); err != nil || c.Params != 42 || len(c.Points) != 3 {
		t.Fatalf("curves %+v (%v): want 42 params and 3 steps", c, err)
	}

	// The steps and checkpoints reached the trainer's metrics.
	for name, want := range map[string]float64{"supflow_train_steps_total": 3, "supflow_train_loss": 1,
		"supflow_train_epoch": 2, "supflow_train_checkpoint_epoch": 2} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if ts := metricValue(t, reg, "supflow_train_checkpoint_timestamp_seconds"); ts < 1.7e9 {
		t.Errorf("checkpoint timestamp %v", ts)
	}

	cfg.Resume, cfg.Epochs = true, 3
	r, err := New(t.Context(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if r.StartEpoch() != 3 || eng.loaded != 2 {
		t.Fatalf("resumed at epoch %d from checkpoint epoch %d, want 3 from 2", r.StartEpoch(), eng.loaded)
	}
}

// metricValue is the value of the one series of a gauge or counter in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			m := f.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}

func TestNewRefusesMissingDeps(t *testing.T) {
	cfg := Config{RunID: "r", BatchSize: 4, Views: 2, Size: 2, Channels: 1, Epochs: 1, CheckpointEvery: 1}
	if _, err := New(t.Context(), cfg, Deps{}); err == nil {
		t.Fatal("New without deps succeeded")
	}
}

// TestStageResumedMidEpoch: a trainer restarted after its predecessor
// checkpointed epoch 1 and stepped part of epoch 2 announces its start,
// then trains epoch 2 from what the stream still held of the old feed plus
// the feeder's re-feed, each sample once: leftovers and re-fed copies are
// one sample, a sample dead-lettered in the old feed stays dropped, and
// older epochs' redeliveries are only acknowledged.
func TestStageResumedMidEpoch(t *testing.T) {
	eng, st, b := &fakeEngine{}, storetest.New(t), newFakeBus()
	if err := st.Put(t.Context(), runs.Checkpoint("r", runs.Last), []byte("1"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{RunID: "r", Arch: "resnet18", BatchSize: 2, Views: 2, Size: 2, Channels: 1, Epochs: 2, CheckpointEvery: 1, Resume: true}
	s, err := New(t.Context(), cfg, Deps{Engine: eng, Store: st, Events: b, DeadLetters: b})
	if err != nil {
		t.Fatal(err)
	}
	if s.StartEpoch() != 2 {
		t.Fatalf("resumed at epoch %d, want 2", s.StartEpoch())
	}
	a := newAcks()
	in := make(chan Delivery, 16)
	in <- a.delivery("r", 1, 3, 2)      // a redelivery of the trained epoch 1
	for _, id := range []uint64{4, 1} { // left of the old feed of epoch 2
		in <- a.delivery("r", 2, id, 2)
	}
	var dead []messages.DeadLetter
	for _, dl := range []messages.DecodeTask{{RunID: "r", Epoch: 1, SampleID: 0, Key: "k"}, {RunID: "r", Epoch: 2, SampleID: 2, Key: "k"}} {
		task, err := messages.MarshalDecodeTask(dl)
		if err != nil {
			t.Fatal(err)
		}
		dead = append(dead, messages.DeadLetter{Payload: task, SourceTopic: messages.TopicDecodeTasks, Reason: "corrupt"})
	}
	b.dead <- dead[0]
	for _, id := range []uint64{3, 0, 1, 4} { // the re-feed; sample 2 is dead-lettered again
		d := a.delivery("r", 2, id, 2)
		if id == 4 {
			// Epoch 2 completes on sample 2's dead letter: it comes once the
			// last re-fed copy is settled, so the stage has read every
			// delivery by then whatever order it serves its inputs in (sent
			// up front, it could end the epoch before reading the last
			// copies).
			ack := d.Ack
			d.Ack = func() error { err := ack(); b.dead <- dead[1]; return err }
		}
		in <- d
	}
	for range 2 { // the old feed's and the re-feed's EpochStart
		b.starts <- messages.Event{RunID: "r", Kind: messages.EventEpochStart, Epoch: 2, Count: 5}
	}
	if _, err := s.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range b.published {
		kinds = append(kinds, ev.Kind.String()+":"+strconv.Itoa(int(ev.Epoch))+":"+strconv.Itoa(int(ev.Count)))
	}
	if want := []string{"trainer_started:2:0", "epoch_trained:2:4", "pretrain_done:2:0"}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	var stepped []int
	for i, ids := range eng.batches {
		if eng.epochs[i] != 2 {
			t.Fatalf("stepped epoch %d", eng.epochs[i])
		}
		stepped = append(stepped, ids...)
	}
	if slices.Sort(stepped); !slices.Equal(stepped, []int{0, 1, 3, 4}) {
		t.Fatalf("stepped %v, want 0, 1, 3 and 4 once each", stepped)
	}
	for key, want := range map[uint64]int{1<<32 | 3: 1, 2<<32 | 0: 1, 2<<32 | 1: 2, 2<<32 | 3: 1, 2<<32 | 4: 2} {
		if got := a.acked[key]; got != want {
			t.Errorf("epoch %d sample %d acknowledged %d times, want %d", key>>32, key&(1<<32-1), got, want)
		}
	}

	// Resumed past the last epoch (its EpochTrained was lost): the start
	// is announced, so the feeder stops waiting, and training is done.
	b.published = nil
	if err := st.Put(t.Context(), runs.Checkpoint("r", runs.Last), []byte("2"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if s, err = New(t.Context(), cfg, Deps{Engine: eng, Store: st, Events: b, DeadLetters: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if len(b.published) != 2 || b.published[0].Kind != messages.EventTrainerStarted || b.published[0].Epoch != 3 || b.published[1].Kind != messages.EventPretrainDone {
		t.Fatalf("events %+v, want trainer_started of epoch 3, then pretrain_done", b.published)
	}
}
