// Package feeder turns the manifest entries of one split into each epoch's
// decode tasks, in an order shuffled by a seed derived from the run seed and
// the epoch, framed by EpochStart and EpochEnd events, each epoch after the
// trainer reported the previous one trained. It is plain logic: it
// publishes through functions the wiring provides (the bus publisher, whose
// back-pressure paces it within an epoch) and must not import bus or another
// stage.
package feeder

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
)

// ErrInvalidConfig reports a Config or entry list New refuses.
var ErrInvalidConfig = errors.New("feeder: invalid config")

// PublishFunc sends decode tasks as one message (1 to Config.Batch of one
// epoch); it may block (back-pressure) and must return when ctx ends.
type PublishFunc func(ctx context.Context, tasks []messages.DecodeTask) error

// EventFunc sends one control event.
type EventFunc func(ctx context.Context, ev messages.Event) error

// TrainedFunc blocks until epoch has been trained (or ctx ends).
type TrainedFunc func(ctx context.Context, epoch uint32) error

// Sender publishes a payload on a topic; the bus's Publisher is one.
type Sender interface {
	Send(ctx context.Context, topic string, payload []byte) error
}

// Publish sends tasks, encoded as one message (messages.MarshalDecodeTasks),
// on messages.TopicDecodeTasks.
func Publish(s Sender) PublishFunc {
	return func(ctx context.Context, tasks []messages.DecodeTask) error {
		p, err := messages.MarshalDecodeTasks(tasks)
		if err != nil {
			return err
		}
		return s.Send(ctx, messages.TopicDecodeTasks, p)
	}
}

// Waiter waits for an event of a run; the bus's Events is one.
type Waiter interface {
	Wait(ctx context.Context, runID string, kind messages.EventKind, match func(messages.Event) bool) (messages.Event, error)
}

// Trained waits for the trainer's EventEpochTrained of runID's epoch.
func Trained(w Waiter, runID string) TrainedFunc {
	return func(ctx context.Context, epoch uint32) error {
		_, err := w.Wait(ctx, runID, messages.EventEpochTrained, func(ev messages.Event) bool { return ev.Epoch == epoch })
		return err
	}
}

// Config says which run the feeder feeds and for how long.
type Config struct {
	RunID string // required; copied into every task and event
	// Seed is the run seed; epoch e is shuffled with a seed derived from
	// (Seed, e), so a run is reproducible and each epoch differs.
	Seed uint64
	// StartEpoch is the first epoch to feed (non-zero when resuming).
	StartEpoch uint32
	// Epochs is how many epochs Run feeds; at least 1.
	Epochs uint32
	// Batch is how many tasks go in one message (bus.batch), in [1,
	// messages.MaxBatch]; 0 means 1.
	Batch int
}

// Feeder produces the decode tasks of one split. It holds no goroutine and
// is safe for concurrent use (its state is read-only after New).
type Feeder struct {
	cfg     Config
	split   string
	entries []dataset.Entry
}

// New checks cfg and the entries, which must be non-empty, valid and all of
// one split. The entries' positions are the tasks' SampleIDs.
func New(cfg Config, entries []dataset.Entry) (*Feeder, error) {
	switch {
	case cfg.RunID == "":
		return nil, fmt.Errorf("%w: empty run id", ErrInvalidConfig)
	case cfg.Epochs == 0:
		return nil, fmt.Errorf("%w: epochs is 0", ErrInvalidConfig)
	case uint64(cfg.StartEpoch)+uint64(cfg.Epochs) > 1<<32:
		return nil, fmt.Errorf("%w: epochs %d from %d overflow uint32", ErrInvalidConfig, cfg.Epochs, cfg.StartEpoch)
	case len(entries) == 0:
		return nil, fmt.Errorf("%w: no entries", ErrInvalidConfig)
	case cfg.Batch < 0 || cfg.Batch > messages.MaxBatch:
		return nil, fmt.Errorf("%w: batch %d not in [1, %d]", ErrInvalidConfig, cfg.Batch, messages.MaxBatch)
	}
	cfg.Batch = max(cfg.Batch, 1)
	split := entries[0].Split
	for i, e := range entries {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrInvalidConfig, i, err)
		}
		if e.Split != split {
			return nil, fmt.Errorf("%w: entry %d is in split %q, entry 0 in %q", ErrInvalidConfig, i, e.Split, split)
		}
	}
	return &Feeder{cfg: cfg, split: split, entries: entries}, nil
}

// Count returns the number of samples per epoch.
func (f *Feeder) Count() int { return len(f.entries) }

// Order returns epoch's permutation of the sample indices. It depends only
// on (Seed, epoch, sample count) and is fixed by this package, not by the
// Go version: the shuffle is written here on top of PCG.
func (f *Feeder) Order(epoch uint32) []int {
	rng := rand.NewPCG(f.cfg.Seed, splitmix64(uint64(epoch)))
	order := make([]int, len(f.entries))
	for i := range order {
		order[i] = i
	}
	for i := len(order) - 1; i > 0; i-- { // Fisher-Yates
		j := int(bounded(rng, uint64(i+1)))
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// Task returns the decode task of sample index i in epoch.
func (f *Feeder) Task(epoch uint32, i int) messages.DecodeTask {
	return f.entries[i].Task(f.cfg.RunID, epoch, uint64(i))
}

// Run feeds epochs StartEpoch .. StartEpoch+Epochs-1: for each, an
// EventEpochStart, every task in the epoch's order, then an EventEpochEnd,
// both events carrying the sample count. With trained set, each epoch after
// the first waits until the one before was trained, so epochs never
// interleave and the streams never hold more than one epoch. It stops at
// the first error from publish, event or trained, or when ctx ends, and
// returns that error.
func (f *Feeder) Run(ctx context.Context, publish PublishFunc, event EventFunc, trained TrainedFunc) error {
	for k := range f.cfg.Epochs {
		e := f.cfg.StartEpoch + k
		if k > 0 && trained != nil {
			if err := trained(ctx, e-1); err != nil {
				return fmt.Errorf("feeder: waiting for epoch %d to be trained: %w", e-1, err)
			}
		}
		if err := f.RunEpoch(ctx, e, publish, event); err != nil {
			return err
		}
	}
	return nil
}

// RunEpoch feeds one epoch (see Run), Config.Batch tasks to a message in
// the epoch's order (the last message may hold fewer).
func (f *Feeder) RunEpoch(ctx context.Context, epoch uint32, publish PublishFunc, event EventFunc) error {
	ev := messages.Event{
		RunID: f.cfg.RunID,
		Kind:  messages.EventEpochStart,
		Epoch: epoch,
		Count: uint64(len(f.entries)),
		Info:  "split " + f.split,
	}
	if err := event(ctx, ev); err != nil {
		return fmt.Errorf("feeder: epoch %d start event: %w", epoch, err)
	}
	order := f.Order(epoch)
	tasks := make([]messages.DecodeTask, 0, f.cfg.Batch)
	for n := 0; n < len(order); n += f.cfg.Batch {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("feeder: epoch %d stopped after %d of %d tasks: %w", epoch, n, len(f.entries), err)
		}
		tasks = tasks[:0]
		for _, i := range order[n:min(n+f.cfg.Batch, len(order))] {
			tasks = append(tasks, f.Task(epoch, i))
		}
		if err := publish(ctx, tasks); err != nil {
			return fmt.Errorf("feeder: epoch %d tasks %d.. (sample %d..): %w", epoch, n, order[n], err)
		}
	}
	ev.Kind = messages.EventEpochEnd
	if err := event(ctx, ev); err != nil {
		return fmt.Errorf("feeder: epoch %d end event: %w", epoch, err)
	}
	return nil
}

// splitmix64 spreads consecutive epochs over unrelated PCG streams.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// bounded returns a uniform value in [0, n) (Lemire's multiply-shift with
// rejection, so no modulo bias).
func bounded(src rand.Source, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}
