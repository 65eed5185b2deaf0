package main

import (
	"context"
	"fmt"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/feeder"
)

// lastEpoch is the last epoch the feeder publishes: feeder.epochs, or
// train.epochs when that is 0.
func lastEpoch(cfg *config.Config) int {
	if cfg.Feeder.Epochs > 0 {
		return cfg.Feeder.Epochs
	}
	return cfg.Train.Stage.Epochs
}

// checkFeed refuses a --start-epoch outside [1, last epoch] before
// anything starts: 0 published an epoch 0, one past the end exited 0
// having done nothing, -1 failed with "overflow uint32".
func checkFeed(e *env) error {
	if err := externalBus(e); err != nil {
		return err
	}
	if last, start := lastEpoch(e.cfg), e.opts.startEpoch; start < 1 || start > last {
		return usageError{fmt.Errorf("--start-epoch %d: want an epoch in [1, %d] (the last is feeder.epochs, or train.epochs when that is 0)", start, last)}
	}
	return nil
}

// feed publishes epochs start..lastEpoch of entries, the training split
// within dataset.limit_train, each after the trainer reported the previous
// one; nothing when start is past the last (a resumed run that had
// finished training).
func feed(ctx context.Context, cfg *config.Config, s *services, entries dataset.Entries, start int) error {
	if entries.Len() == 0 {
		return fmt.Errorf("the manifest has no %q split", cfg.Dataset.TrainSplit)
	}
	last := lastEpoch(cfg)
	if start > last {
		return nil
	}
	f, err := feeder.New(feeder.Config{RunID: cfg.Run.ID, Seed: uint64(cfg.Run.Seed), StartEpoch: uint32(start),
		Epochs: uint32(last - start + 1), Batch: cfg.Bus.Batch, MaxBytes: int64(cfg.Bus.MaxPayload), ShardRun: cfg.Feeder.ShardRun,
		Generation: s.bus.Generation}, entries)
	if err != nil {
		return err
	}
	events := s.bus.Events()
	// One line per epoch fed: operators (and the HA compose test) see
	// when an epoch's tasks are all on the bus.
	event := func(ctx context.Context, ev messages.Event) error {
		err := events.Publish(ctx, ev)
		if err == nil && ev.Kind == messages.EventEpochEnd {
			s.log.Info("epoch fed", "epoch", ev.Epoch, "samples", ev.Count)
		}
		return err
	}
	return f.Run(ctx, feeder.Publish(s.bus.Publisher()), event, feeder.Progress(events, cfg.Run.ID))
}

func runFeed(ctx context.Context, e *env) error {
	s, err := open(ctx, e, "feeder", true)
	if err != nil {
		return err
	}
	defer s.close()
	// Only the training split, in columns: a tenth of the memory of the
	// whole data set's entries (dataset.Table).
	t, err := dataset.LoadTable(ctx, s.store, e.cfg.Dataset.Prefix, e.cfg.Dataset.TrainSplit)
	if err != nil {
		return datasetError(s.store, e.cfg.Dataset.Prefix, err)
	}
	s.log.Info("stage running", "run_id", e.cfg.Run.ID, "start_epoch", e.opts.startEpoch, "samples", t.Len())
	if err := feed(ctx, e.cfg, s, t.Take(e.cfg.Dataset.LimitTrain, uint64(e.cfg.Run.Seed)), e.opts.startEpoch); err != nil {
		return err
	}
	s.log.Info("all epochs fed and trained", "run_id", e.cfg.Run.ID)
	return nil
}
