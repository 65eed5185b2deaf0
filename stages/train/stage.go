package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/store"
)

// ErrConfig reports a Config or Deps that New refuses.
var ErrConfig = errors.New("train: invalid config")

// Engine trains the model: *engine.CPU and *xla/trainer.Engine implement
// it.
type Engine interface {
	Stepper
	// Save serializes the whole training state after epoch.
	Save(epoch int, extra map[string]string) ([]byte, error)
	// Load restores a state written by Save.
	Load(b []byte) (checkpoint.Meta, error)
	// Params counts the trainable parameters.
	Params() int64
}

// Store keeps checkpoints and curves; *store.Client implements it.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, b []byte, opts store.PutOptions) error
}

// Events carries the run's control events; the bus's Events implements it.
type Events interface {
	Publish(ctx context.Context, ev messages.Event) error
	Subscribe(ctx context.Context, runID string, kinds ...messages.EventKind) (<-chan messages.Event, error)
}

// DeadLetters delivers every dead-lettered message; *bus.Bus implements it.
type DeadLetters interface {
	DeadLetters(ctx context.Context) (<-chan messages.DeadLetter, error)
}

// Monitor scores the encoder between epochs (the kNN monitor of package
// evaluate).
type Monitor interface {
	Score(ctx context.Context) (probe.Score, error)
}

// Deps are what the stage runs with. Engine, Store, Events and DeadLetters
// are required.
type Deps struct {
	Engine      Engine
	Store       Store
	Events      Events
	DeadLetters DeadLetters
	// Monitor, optional, scores the encoder (see MonitorConfig.Every).
	Monitor Monitor
	Log     *slog.Logger
	// Progress, when set, is told each step's place in its epoch (a
	// terminal progress line); a call with total 0 clears it.
	Progress func(label string, done, total int, detail string)
	// Metrics, optional, receives each step, kNN score and checkpoint.
	Metrics Metrics
}

// Metrics receives the stage's measurements as they happen;
// *metrics.Trainer implements it (on /metrics).
type Metrics interface {
	Step(epoch, samples int, loss, lr float64, step, wait time.Duration)
	KNN(top1, top5 float64)
	Checkpoint(epoch int, at time.Time)
}

// Stage is the train stage: resume, the step loop, checkpoints, curves, the
// kNN monitor and the run's EpochTrained and PretrainDone events.
type Stage struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	start int // first epoch to train

	mu     sync.Mutex
	curves report.Curves
}

// New checks cfg, with its unset settings defaulted, and deps and, with
// cfg.Resume, loads the run's last checkpoint (none yet is not an error:
// training starts from scratch). A bad setting gives an error wrapping
// ErrConfig that names its key.
func New(ctx context.Context, cfg Config, deps Deps) (*Stage, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch {
	case cfg.RunID == "":
		return nil, fmt.Errorf("%w: empty run id", ErrConfig)
	case deps.Engine == nil || deps.Store == nil || deps.Events == nil || deps.DeadLetters == nil:
		return nil, fmt.Errorf("%w: Engine, Store, Events and DeadLetters are required", ErrConfig)
	case cfg.Classes < 0:
		return nil, fmt.Errorf("%w: %d classes", ErrConfig, cfg.Classes)
	}
	s := &Stage{cfg: cfg, deps: deps, log: deps.Log, start: 1}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.curves = report.Curves{Arch: cfg.Arch, Params: deps.Engine.Params()}
	if cfg.Resume {
		if err := s.resume(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// StartEpoch is the first epoch Run trains: 1, or the one after the
// resumed checkpoint's.
func (s *Stage) StartEpoch() int { return s.start }

func (s *Stage) resume(ctx context.Context) error {
	key := runs.Checkpoint(s.cfg.RunID, runs.Last)
	b, err := s.deps.Store.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.log.Warn("--resume: no checkpoint yet, starting from scratch", "key", key)
		return nil
	case err != nil:
		return err
	}
	meta, err := s.deps.Engine.Load(b)
	if err != nil {
		return fmt.Errorf("resume from %s: %w", key, err)
	}
	s.start = meta.Epoch + 1
	if prev, err := s.deps.Store.Get(ctx, runs.Key(s.cfg.RunID, runs.Curves)); err == nil {
		_ = json.Unmarshal(prev, &s.curves) // curves are informational
	}
	s.log.Info("resumed", "checkpoint", key, "epoch", meta.Epoch, "step", meta.Step)
	return nil
}

// Run trains from StartEpoch to the last epoch on the view groups from in,
// publishes TrainerStarted first, EpochTrained after each epoch and
// PretrainDone at the end, and returns the key of the last checkpoint.
// Epoch sizes come from the feeder's EpochStart events and samples that
// will never arrive from the dead-letter stream.
func (s *Stage) Run(ctx context.Context, in <-chan Delivery) (string, error) {
	cfg := s.cfg
	last := runs.Checkpoint(cfg.RunID, runs.Last)
	done := messages.Event{Kind: messages.EventPretrainDone, Epoch: uint32(cfg.Epochs), Ref: last}
	// A trainer before this one may have stepped (and acknowledged) views
	// of s.start after its checkpoint: told of this start, the feeder
	// feeds the epoch again, and the loop's per-sample de-duplication
	// trains the old feed's leftovers and the new feed once. Sent before
	// the first step, so every trainer that acknowledged a view sent it.
	if err := s.publish(ctx, messages.Event{Kind: messages.EventTrainerStarted, Epoch: uint32(s.start)}); err != nil {
		return "", fmt.Errorf("announcing the start: %w", err)
	}
	if s.start > cfg.Epochs {
		s.log.Info("nothing to train: the checkpoint is past the last epoch", "epoch", s.start-1)
		return last, s.publish(ctx, done)
	}
	l, err := newLoop(loopConfig{
		RunID: cfg.RunID, BatchSize: cfg.BatchSize, DropLast: cfg.DropLast, Views: cfg.Views, Height: cfg.Size, Width: cfg.Size,
		Channels: cfg.Channels, Epochs: cfg.Epochs, StartEpoch: s.start, Classes: cfg.Classes, Log: s.log,
	}, s.deps.Engine, hooks{Step: s.onStep, Epoch: s.onEpoch})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	control := make(chan Control, 64)
	if err := s.controlFeed(ctx, control); err != nil {
		return "", err
	}
	started := time.Now()
	err = l.run(ctx, in, control)
	s.progress("", 0, 0, "")
	if err != nil {
		return "", err
	}
	s.log.Info("pretraining done", "epochs", cfg.Epochs, "seconds", time.Since(started).Seconds())
	return last, s.publish(context.WithoutCancel(ctx), done)
}

// controlFeed turns EpochStart events into epoch sizes and dead letters of
// this run into dropped samples.
func (s *Stage) controlFeed(ctx context.Context, control chan<- Control) error {
	evs, err := s.deps.Events.Subscribe(ctx, s.cfg.RunID, messages.EventEpochStart)
	if err != nil {
		return err
	}
	dls, err := s.deps.DeadLetters.DeadLetters(ctx)
	if err != nil {
		return err
	}
	send := func(c Control) bool {
		select {
		case control <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		for ev := range evs {
			if !send(Control{Epoch: int(ev.Epoch), EpochSize: int(ev.Count)}) {
				return
			}
		}
	}()
	go func() {
		for dl := range dls {
			run, epoch, ids, ok := dl.Samples()
			if !ok || run != s.cfg.RunID {
				continue
			}
			for _, id := range ids {
				s.log.Warn("sample dead-lettered", "epoch", epoch, "sample_id", id, "handler", dl.Handler, "reason", dl.Reason)
				if !send(Control{Epoch: int(epoch), Dropped: true, SampleID: id}) {
					return
				}
			}
		}
	}()
	return nil
}

func (s *Stage) publish(ctx context.Context, ev messages.Event) error {
	ev.RunID = s.cfg.RunID
	return s.deps.Events.Publish(ctx, ev)
}

func (s *Stage) progress(label string, done, total int, detail string) {
	if s.deps.Progress != nil {
		s.deps.Progress(label, done, total, detail)
	}
}
