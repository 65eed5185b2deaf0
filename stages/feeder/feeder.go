// Package feeder turns the manifest entries of one split into each epoch's
// decode tasks, in an order shuffled by a seed derived from the run seed and
// the epoch (a sharded data set's in runs of shard neighbours, so that
// decode reads a message's samples with a few ranged GETs: ShardRun),
// framed by EpochStart and EpochEnd events, each epoch after the
// trainer reported the previous one trained. It is plain logic: it
// publishes through functions the wiring provides (the bus publisher, whose
// back-pressure paces it within an epoch) and must not import bus or another
// stage.
package feeder

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"time"

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

// ProgressFunc opens the run's EpochStart, EpochTrained and
// TrainerStarted events, in stream order from the first one stored; the
// channel closes when ctx ends.
type ProgressFunc func(ctx context.Context) (<-chan messages.Event, error)

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

// Subscriber reads a run's events; the bus's Events is one.
type Subscriber interface {
	Subscribe(ctx context.Context, runID string, kinds ...messages.EventKind) (<-chan messages.Event, error)
}

// Progress follows runID's trainer (and the feeder's own epoch starts)
// through s.
func Progress(s Subscriber, runID string) ProgressFunc {
	return func(ctx context.Context) (<-chan messages.Event, error) {
		return s.Subscribe(ctx, runID, messages.EventEpochStart, messages.EventEpochTrained, messages.EventTrainerStarted)
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
	// MaxBytes (bus.max_payload) ends a message early once its images'
	// encoded sizes (the entries' Size) reach it; 0: Batch alone counts.
	// Small images then travel Batch to a message, large ones a few, so
	// that what decode holds and emits for one message stays about a
	// payload or two (Split).
	MaxBytes int64
	// ShardRun (feeder.shard_run), for a sharded data set, is how many
	// consecutive members of a shard the order keeps together, in [1,
	// 65536]; 0 means 1, a full shuffle. See runOrder for what it does to
	// the order; loose entries are always fully shuffled.
	ShardRun int
	// Generation, if set, names the generation of the bus's memory edges
	// (bus.Bus.Generation): it changes when one was created again, having
	// lost what it held to a NATS restart. Following the trainer, the
	// feeder feeds an epoch again whose generation changed after its feed
	// began and before it was trained (see Run).
	Generation func(ctx context.Context) (string, error)
}

// Feeder produces the decode tasks of one split. It holds no goroutine and
// is safe for concurrent use (its state is read-only after New).
type Feeder struct {
	cfg     Config
	split   string
	entries dataset.Entries
	shards  *shardIndex // nil: a loose data set, or ShardRun 1
	id      string      // Ref of its EpochStart and EpochEnd events
}

// New checks cfg and the entries, which must be non-empty, valid and all of
// one split: a dataset.List, or a dataset.Table (a third of the memory at
// ImageNet's size, see there). The entries' positions are the tasks'
// SampleIDs; the Feeder reads them for its whole life.
func New(cfg Config, entries dataset.Entries) (*Feeder, error) {
	switch {
	case cfg.RunID == "":
		return nil, fmt.Errorf("%w: empty run id", ErrInvalidConfig)
	case cfg.Epochs == 0:
		return nil, fmt.Errorf("%w: epochs is 0", ErrInvalidConfig)
	case uint64(cfg.StartEpoch)+uint64(cfg.Epochs) > 1<<32:
		return nil, fmt.Errorf("%w: epochs %d from %d overflow uint32", ErrInvalidConfig, cfg.Epochs, cfg.StartEpoch)
	case entries.Len() == 0:
		return nil, fmt.Errorf("%w: no entries", ErrInvalidConfig)
	case cfg.Batch < 0 || cfg.Batch > messages.MaxBatch:
		return nil, fmt.Errorf("%w: batch %d not in [1, %d]", ErrInvalidConfig, cfg.Batch, messages.MaxBatch)
	case cfg.MaxBytes < 0:
		return nil, fmt.Errorf("%w: max bytes %d is negative", ErrInvalidConfig, cfg.MaxBytes)
	case cfg.ShardRun < 0 || cfg.ShardRun > MaxShardRun:
		return nil, fmt.Errorf("%w: shard run %d not in [1, %d]", ErrInvalidConfig, cfg.ShardRun, MaxShardRun)
	case uint64(entries.Len()) > 1<<32-1:
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrInvalidConfig, entries.Len(), uint64(1<<32-1))
	}
	cfg.Batch, cfg.ShardRun = max(cfg.Batch, 1), max(cfg.ShardRun, 1)
	split := entries.Entry(0).Split
	for i := range entries.Len() {
		e := entries.Entry(i)
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrInvalidConfig, i, err)
		}
		if e.Split != split {
			return nil, fmt.Errorf("%w: entry %d is in split %q, entry 0 in %q", ErrInvalidConfig, i, e.Split, split)
		}
	}
	f := &Feeder{cfg: cfg, split: split, entries: entries, id: "feeder/" + crand.Text()}
	if cfg.ShardRun > 1 {
		f.shards = newShardIndex(entries)
	}
	return f, nil
}

// Count returns the number of samples per epoch.
func (f *Feeder) Count() int { return f.entries.Len() }

// Order returns epoch's permutation of the sample indices. It depends only
// on (Seed, epoch, sample count; for a sharded data set with ShardRun > 1,
// the shards and offsets too: runOrder) and is fixed by this package, not
// by the Go version: the shuffle is written here on top of PCG.
func (f *Feeder) Order(epoch uint32) []int {
	if f.shards != nil {
		return f.shards.runOrder(f.cfg.Seed, epoch, f.cfg.ShardRun)
	}
	rng := rand.NewPCG(f.cfg.Seed, splitmix64(uint64(epoch)))
	order := make([]int, f.entries.Len())
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
	return f.entries.Entry(i).Task(f.cfg.RunID, epoch, uint64(i))
}

// Run feeds epochs StartEpoch .. StartEpoch+Epochs-1: for each, an
// EventEpochStart, every task in the epoch's order, then an EventEpochEnd,
// both events carrying the sample count and, in Ref, the Feeder's id (one
// per New). With progress set, it feeds an
// epoch only after the one before was trained, so epochs never interleave
// and the streams never hold more than one epoch, and it returns once the
// last epoch was trained; a restarted trainer's TrainerStarted makes it
// feed that epoch again (see follower), and so does a change of
// Config.Generation, checked every generationEvery until the epoch was
// trained, if the epoch was not trained in the next generationEvery:
// samples of the epoch may have been lost in memory streams, and the
// trainer de-duplicates by sample. It stops at the first error from
// publish, event or progress, or when ctx ends, and returns that error.
func (f *Feeder) Run(ctx context.Context, publish PublishFunc, event EventFunc, progress ProgressFunc) error {
	first, last := f.cfg.StartEpoch, f.cfg.StartEpoch+(f.cfg.Epochs-1)
	if progress == nil {
		for e := first; ; e++ {
			if err := f.RunEpoch(ctx, e, publish, event); err != nil || e == last {
				return err
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, err := progress(ctx)
	if err != nil {
		return fmt.Errorf("feeder: following the trainer: %w", err)
	}
	fl := follower{first: first, last: last, epoch: first, id: f.id}
	for {
		gen, err := f.generation(ctx)
		if err != nil {
			return fmt.Errorf("feeder: epoch %d: %w", fl.epoch, err)
		}
		if err := f.RunEpoch(ctx, fl.epoch, publish, event); err != nil {
			return err
		}
		var lost func() bool
		if f.cfg.Generation != nil {
			lost = func() bool {
				now, err := f.cfg.Generation(ctx)
				return err == nil && now != gen // a failed check is made again
			}
		}
		if done, err := fl.follow(ctx, evs, lost); done || err != nil {
			return err
		}
	}
}

// generationEvery is how often a fed epoch's generation is checked.
const generationEvery = time.Second

// generation returns Config.Generation's value ("" without it), asking
// again every generationEvery while it fails, as a publish waits for a
// NATS server that is away, until ctx ends.
func (f *Feeder) generation(ctx context.Context) (string, error) {
	if f.cfg.Generation == nil {
		return "", nil
	}
	for {
		g, err := f.cfg.Generation(ctx)
		if err == nil {
			return g, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("gave up (%v): %w", err, ctx.Err())
		case <-time.After(generationEvery):
		}
	}
}

// follower reads the run's events in stream order to decide what to feed
// next. Every trainer announces the epoch it starts at before its first
// step. When one restarts, the views of that epoch its killed predecessor
// stepped after its checkpoint were acknowledged and are gone, so a feed
// of the epoch that began before the announcement is repeated (the
// trainer de-duplicates by sample, so leftovers of the old feed and the
// new one are trained once). A feed that began after it reaches the new
// trainer whole, and the first trainer's start needs nothing: that is why
// the feeder's own EpochStart events are read from the same stream, for
// their order, and trainer starts are counted. Own means this Feeder's
// (Ref its id): a restarted feeder reads its predecessors' feeds and the
// trainer restarts that followed them first, and counting those fed its
// first epoch again once per earlier restart.
type follower struct {
	first, last uint32
	id          string // the Feeder's, in the Ref of its EpochStart events
	epoch       uint32 // being fed or awaited
	fed         bool   // an own EpochStart of epoch came since it was chosen
	trainers    int    // TrainerStarted events so far
}

// follow reads events until epoch was trained (done when it was the last;
// otherwise epoch moves on) or must be fed again (epoch set to it): after
// a trainer's restart, or when lost, if set, reports a loss (it is asked
// every generationEvery).
func (fl *follower) follow(ctx context.Context, evs <-chan messages.Event, lost func() bool) (done bool, err error) {
	var tick <-chan time.Time
	if lost != nil {
		t := time.NewTicker(generationEvery)
		defer t.Stop()
		tick = t.C
	}
	refeed := false // a loss was seen a tick ago
	for {
		var ev messages.Event
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("feeder: waiting for epoch %d to be trained: %w", fl.epoch, ctx.Err())
		case <-tick:
			// The events that came before the loss was seen may still be
			// on their way (a restart interrupts the subscription too): a
			// tick's grace lets an EpochTrained among them spare a feed.
			if refeed {
				fl.fed = false
				return false, nil
			}
			refeed = lost()
			continue
		case e, ok := <-evs:
			if !ok {
				return false, fmt.Errorf("feeder: waiting for epoch %d to be trained: event subscription ended", fl.epoch)
			}
			ev = e
		}
		restart := ev.Kind == messages.EventTrainerStarted && fl.trainers > 0
		if ev.Kind == messages.EventTrainerStarted {
			fl.trainers++
		}
		switch {
		case ev.Kind == messages.EventEpochStart && ev.Epoch == fl.epoch && ev.Ref == fl.id:
			fl.fed = true
		case ev.Kind == messages.EventEpochTrained && ev.Epoch == fl.epoch,
			// a checkpoint of epoch was saved before its EpochTrained was sent
			restart && uint64(ev.Epoch) == uint64(fl.epoch)+1:
			if fl.epoch == fl.last {
				return true, nil
			}
			fl.epoch, fl.fed = fl.epoch+1, false
			return false, nil
		case restart && ev.Epoch == fl.epoch && fl.fed,
			// an older checkpoint (train.checkpoint_every > 1): go back to it
			restart && ev.Epoch >= fl.first && ev.Epoch < fl.epoch:
			fl.epoch, fl.fed = ev.Epoch, false
			return false, nil
		}
	}
}

// RunEpoch feeds one epoch (see Run) in the epoch's order, in messages as
// Split cuts them.
func (f *Feeder) RunEpoch(ctx context.Context, epoch uint32, publish PublishFunc, event EventFunc) error {
	ev := messages.Event{
		RunID: f.cfg.RunID,
		Kind:  messages.EventEpochStart,
		Epoch: epoch,
		Count: uint64(f.entries.Len()),
		Ref:   f.id,
		Info:  "split " + f.split,
	}
	if err := event(ctx, ev); err != nil {
		return fmt.Errorf("feeder: epoch %d start event: %w", epoch, err)
	}
	order := f.Order(epoch)
	ends := Split(len(order), f.cfg.Batch, f.cfg.MaxBytes, func(k int) int64 { return f.entries.Entry(order[k]).Size })
	tasks := make([]messages.DecodeTask, 0, f.cfg.Batch)
	n := 0
	for _, end := range ends {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("feeder: epoch %d stopped after %d of %d tasks: %w", epoch, n, f.entries.Len(), err)
		}
		tasks = tasks[:0]
		for _, i := range order[n:end] {
			tasks = append(tasks, f.Task(epoch, i))
		}
		if err := publish(ctx, tasks); err != nil {
			return fmt.Errorf("feeder: epoch %d tasks %d.. (sample %d..): %w", epoch, n, order[n], err)
		}
		n = end
	}
	ev.Kind = messages.EventEpochEnd
	if err := event(ctx, ev); err != nil {
		return fmt.Errorf("feeder: epoch %d end event: %w", epoch, err)
	}
	return nil
}

// Split cuts n tasks, in order, into messages and returns where each ends:
// batch tasks to a message, fewer where their images' encoded sizes
// (size(k) of task k) reach maxBytes (0: no bound), one at least. bus.batch
// 256 with shard runs of 64 is what pays at 28-32 px (docs/benchmarks.md,
// "Larger messages for small images") but would have had decode hold 256
// photos for one message; by their sizes, 110 KB JPEGs go about 10 to a
// MiB message.
func Split(n, batch int, maxBytes int64, size func(k int) int64) []int {
	batch = max(batch, 1)
	ends := make([]int, 0, (n+batch-1)/batch)
	for k := 0; k < n; {
		end, bytes := k, int64(0)
		for end < n && end-k < batch && (maxBytes == 0 || bytes < maxBytes) {
			bytes += size(end)
			end++
		}
		ends = append(ends, end)
		k = end
	}
	return ends
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
