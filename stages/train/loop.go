package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/messages"
)

// Stepper takes one optimizer step; *engine.CPU and *xla/trainer.Engine
// implement it.
type Stepper interface {
	Step(ctx context.Context, b engine.Batch) (engine.Stats, error)
}

// Delivery is one view group and the handles that settle it on the bus.
type Delivery struct {
	Msg messages.ViewGroup
	// Ack settles the message: it went into a completed step.
	Ack func() error
	// Nak asks for redelivery (the step that held it failed).
	Nak func() error
	// Reject dead-letters a message that can never be used (wrong shape).
	Reject func(reason error) error
}

// Control tells the stage how big an epoch is, or that a sample of it was
// dead-lettered upstream and will never arrive.
type Control struct {
	Epoch     int
	EpochSize int    // > 0: the epoch has this many samples
	Dropped   bool   // true: SampleID was dead-lettered upstream
	SampleID  uint64 // with Dropped
}

// loopConfig configures the loop.
type loopConfig struct {
	RunID      string
	BatchSize  int
	DropLast   bool // an epoch's short last batch is acknowledged, not stepped
	Views      int
	Height     int
	Width      int
	Channels   int
	Epochs     int // last epoch to train (1-based, inclusive)
	StartEpoch int // first epoch to train; > 1 when resuming
	Classes    int // > 0: labels must lie in [0, Classes)
	Log        *slog.Logger
}

// hooks observe the loop. All are optional.
type hooks struct {
	// Step is called after every step with the time spent waiting for data.
	Step func(s engine.Stats, wait time.Duration)
	// Epoch is called once all samples of an epoch are accounted for; an
	// error stops the stage.
	Epoch func(ctx context.Context, epoch int, e EpochStats) error
}

// EpochStats summarizes one epoch.
type EpochStats struct {
	Samples int // distinct samples stepped
	Dropped int // samples dead-lettered upstream or rejected here
	// Unstepped counts the samples of the short last batch left out by
	// drop_last: acknowledged, not trained.
	Unstepped  int
	Duplicates int // redeliveries dropped
	Steps      int
	MeanLoss   float64
	Wait       time.Duration // time spent waiting for data
	Duration   time.Duration
	// The exact sets, ascending: the sample ids stepped (once each, unless
	// something stepped a sample twice) and those dropped.
	TrainedIDs   []uint64
	DroppedIDs   []uint64
	UnsteppedIDs []uint64
}

// loop turns deliveries into steps and accounts for every sample of every
// epoch. It is driven by run from one goroutine.
type loop struct {
	cfg   loopConfig
	step  Stepper
	hooks hooks
	log   *slog.Logger
}

// newLoop validates cfg and returns a loop.
func newLoop(cfg loopConfig, s Stepper, h hooks) (*loop, error) {
	switch {
	case s == nil:
		return nil, fmt.Errorf("%w: no engine", ErrConfig)
	case cfg.BatchSize < 1, cfg.Views < 1:
		return nil, fmt.Errorf("%w: batch %d x %d views: both must be positive", ErrConfig, cfg.BatchSize, cfg.Views)
	case cfg.Height < 1 || cfg.Width < 1 || (cfg.Channels != 1 && cfg.Channels != 3):
		return nil, fmt.Errorf("%w: view shape %dx%dx%d", ErrConfig, cfg.Height, cfg.Width, cfg.Channels)
	case cfg.Epochs < 1:
		return nil, fmt.Errorf("%w: epochs %d: want >= 1", ErrConfig, cfg.Epochs)
	}
	if cfg.StartEpoch < 1 {
		cfg.StartEpoch = 1
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &loop{cfg: cfg, step: s, hooks: h, log: log}, nil
}

// pending is one distinct sample waiting for its step, with every delivery
// of it received so far (a redelivery of a held message must be acked too).
type pending struct {
	msg  messages.ViewGroup
	acks []Delivery
}

// epochState tracks one epoch's accounting.
type epochState struct {
	size       int                 // announced sample count, 0 until known
	seen       map[uint64]struct{} // stepped, pending or dropped
	outside    int                 // ids in seen >= size (once size is known): not the epoch's
	pending    []*pending
	index      map[uint64]*pending
	stats      EpochStats
	lossSum    float64
	start      time.Time
	batchIndex int
}

func newEpoch() *epochState {
	return &epochState{seen: map[uint64]struct{}{}, index: map[uint64]*pending{}, start: time.Now()}
}

// run consumes deliveries and control messages until the last epoch is
// trained (nil), ctx ends (ctx.Err()) or a step or hook fails. Messages it
// holds when it returns early are nak'ed so that they are redelivered.
func (s *loop) run(ctx context.Context, in <-chan Delivery, control <-chan Control) (err error) {
	epochs := map[int]*epochState{}
	get := func(e int) *epochState {
		st, ok := epochs[e]
		if !ok {
			st = newEpoch()
			epochs[e] = st
		}
		return st
	}
	cur := s.cfg.StartEpoch
	defer func() {
		for _, st := range epochs {
			for _, p := range st.pending {
				for _, d := range p.acks {
					settle(d.Nak)
				}
			}
		}
	}()
	waitStart := time.Now()
	var wait time.Duration
	for cur <= s.cfg.Epochs {
		st := get(cur)
		// Step whenever a full batch is ready or the epoch's last samples
		// are in (unless drop_last leaves them out).
		for len(st.pending) >= s.cfg.BatchSize || (st.complete() && len(st.pending) > 0 && !s.cfg.DropLast) {
			wait += time.Since(waitStart)
			if err := s.stepBatch(ctx, cur, st, wait); err != nil {
				return err
			}
			wait = 0
			waitStart = time.Now()
		}
		if st.complete() {
			s.leaveOut(st)
			slices.Sort(st.stats.TrainedIDs)
			slices.Sort(st.stats.DroppedIDs)
			st.stats.Duration = time.Since(st.start)
			if st.stats.Steps > 0 {
				st.stats.MeanLoss = st.lossSum / float64(st.stats.Steps)
			}
			s.log.Info("epoch trained", "epoch", cur, "samples", st.stats.Samples, "dropped", st.stats.Dropped,
				"duplicates", st.stats.Duplicates, "unstepped", st.stats.Unstepped, "steps", st.stats.Steps, "mean_loss", st.stats.MeanLoss,
				"wait_seconds", st.stats.Wait.Seconds(), "seconds", st.stats.Duration.Seconds(),
				"trained_ids", FormatIDs(st.stats.TrainedIDs), "dropped_ids", FormatIDs(st.stats.DroppedIDs))
			if s.hooks.Epoch != nil {
				if err := s.hooks.Epoch(ctx, cur, st.stats); err != nil {
					return fmt.Errorf("train: epoch %d hook: %w", cur, err)
				}
			}
			delete(epochs, cur)
			cur++
			if next, ok := epochs[cur]; ok {
				next.start = time.Now()
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case d, ok := <-in:
			if !ok {
				return errors.New("train: delivery channel closed before the last epoch was trained")
			}
			s.accept(d, cur, get)
		case c, ok := <-control:
			if !ok {
				control = nil
				continue
			}
			if c.Epoch < cur {
				continue
			}
			e := get(c.Epoch)
			if c.EpochSize > 0 {
				e.setSize(c.EpochSize)
			}
			if c.Dropped {
				if _, dup := e.seen[c.SampleID]; !dup {
					e.see(c.SampleID)
					e.stats.Dropped++
					e.stats.DroppedIDs = append(e.stats.DroppedIDs, c.SampleID)
				}
			}
		}
	}
	return nil
}

// complete reports whether every sample of the epoch, ids [0, size), was
// stepped or dropped. Ids outside it (a forged or malformed message that
// names one) do not count.
func (e *epochState) complete() bool { return e.size > 0 && len(e.seen)-e.outside >= e.size }

// see marks id as accounted for.
func (e *epochState) see(id uint64) {
	if _, ok := e.seen[id]; ok {
		return
	}
	e.seen[id] = struct{}{}
	if e.size > 0 && id >= uint64(e.size) {
		e.outside++
	}
}

// setSize records the epoch's sample count.
func (e *epochState) setSize(n int) {
	e.size, e.outside = n, 0
	for id := range e.seen {
		if id >= uint64(n) {
			e.outside++
		}
	}
}

// accept files one delivery under its epoch, dropping other runs' messages,
// redeliveries of trained samples and malformed groups.
func (s *loop) accept(d Delivery, cur int, get func(int) *epochState) {
	m := d.Msg
	switch {
	case m.RunID != s.cfg.RunID:
		s.log.Warn("dropping a view group of another run", "run_id", m.RunID)
		settle(d.Ack)
		return
	case int(m.Epoch) < cur:
		settle(d.Ack) // a redelivery of an epoch already trained
		return
	}
	e := get(int(m.Epoch))
	if p, ok := e.index[m.SampleID]; ok {
		p.acks = append(p.acks, d)
		e.stats.Duplicates++
		return
	}
	if _, ok := e.seen[m.SampleID]; ok {
		e.stats.Duplicates++
		settle(d.Ack)
		return
	}
	var err error
	switch {
	case int(m.NViews) != s.cfg.Views || int(m.Height) != s.cfg.Height || int(m.Width) != s.cfg.Width || int(m.Channels) != s.cfg.Channels:
		err = messages.Permanent(fmt.Errorf("train: sample %d: %d views of %dx%dx%d, the trainer expects %d of %dx%dx%d",
			m.SampleID, m.NViews, m.Height, m.Width, m.Channels, s.cfg.Views, s.cfg.Height, s.cfg.Width, s.cfg.Channels))
	case s.cfg.Classes > 0 && (m.Label < 0 || int64(m.Label) >= int64(s.cfg.Classes)):
		err = messages.Permanent(fmt.Errorf("train: sample %d: label %d outside the data set's %d classes [0, %d)",
			m.SampleID, m.Label, s.cfg.Classes, s.cfg.Classes))
	case e.size > 0 && m.SampleID >= uint64(e.size):
		err = messages.Permanent(fmt.Errorf("train: sample %d: outside epoch %d's %d samples", m.SampleID, m.Epoch, e.size))
	}
	if err != nil {
		s.log.Error("rejecting view group", "sample_id", m.SampleID, "error", err)
		if d.Reject != nil {
			settle(func() error { return d.Reject(err) })
		} else {
			settle(d.Ack)
		}
		e.see(m.SampleID)
		e.stats.Dropped++
		e.stats.DroppedIDs = append(e.stats.DroppedIDs, m.SampleID)
		return
	}
	p := &pending{msg: m, acks: []Delivery{d}}
	e.pending = append(e.pending, p)
	e.index[m.SampleID] = p
	e.see(m.SampleID)
}

// stepBatch steps the first BatchSize pending samples of epoch cur and acks them.
func (s *loop) stepBatch(ctx context.Context, cur int, e *epochState, wait time.Duration) error {
	n := min(len(e.pending), s.cfg.BatchSize)
	group := e.pending[:n]
	v, h, w, c := s.cfg.Views, s.cfg.Height, s.cfg.Width, s.cfg.Channels
	view := h * w * c
	b := engine.Batch{
		Size: n, Views: v, Height: h, Width: w, Channels: c,
		Pixels: make([]uint8, n*v*view), Labels: make([]int, n),
		Epoch: cur, Index: e.batchIndex, PerEpoch: s.perEpoch(e),
	}
	for i, p := range group {
		b.Labels[i] = int(p.msg.Label)
		for k := 0; k < v; k++ {
			copy(b.Pixels[(k*n+i)*view:], p.msg.Pixels[k*view:(k+1)*view])
		}
	}
	stats, err := s.step.Step(ctx, b)
	if err != nil {
		return fmt.Errorf("train: epoch %d batch %d: %w", cur, e.batchIndex, err)
	}
	for _, p := range group {
		for _, d := range p.acks {
			settle(d.Ack)
		}
		delete(e.index, p.msg.SampleID)
		e.stats.TrainedIDs = append(e.stats.TrainedIDs, p.msg.SampleID)
	}
	e.pending = append(e.pending[:0], e.pending[n:]...)
	e.batchIndex++
	e.stats.Samples += n
	e.stats.Steps++
	e.stats.Wait += wait
	e.lossSum += stats.Loss
	if s.hooks.Step != nil {
		s.hooks.Step(stats, wait)
	}
	return nil
}

// leaveOut acknowledges, unstepped, what a complete epoch still holds: the
// short last batch under drop_last (none otherwise).
func (s *loop) leaveOut(e *epochState) {
	for _, p := range e.pending {
		for _, d := range p.acks {
			settle(d.Ack)
		}
		delete(e.index, p.msg.SampleID)
		e.stats.UnsteppedIDs = append(e.stats.UnsteppedIDs, p.msg.SampleID)
	}
	e.stats.Unstepped += len(e.pending)
	e.pending = e.pending[:0]
	slices.Sort(e.stats.UnsteppedIDs)
}

// perEpoch is the number of batches in the epoch, once its size is known:
// floor(size/batch) under drop_last, as PyTorch's len(DataLoader).
func (s *loop) perEpoch(e *epochState) int {
	if e.size == 0 {
		return 0
	}
	if s.cfg.DropLast {
		return e.size / s.cfg.BatchSize
	}
	return (e.size + s.cfg.BatchSize - 1) / s.cfg.BatchSize
}

// settle calls an ack/nak handle if present. Settlement errors are not
// fatal: JetStream redelivers an unsettled message after AckWait and the
// stage drops the duplicate.
func settle(f func() error) {
	if f != nil {
		_ = f()
	}
}
