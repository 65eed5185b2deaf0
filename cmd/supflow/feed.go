package main

import (
	"context"
	"fmt"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/stages/feeder"
)

// feed publishes epochs start..feeder.epochs (default train.epochs) of the
// training split, each after the trainer reported the previous one.
func feed(ctx context.Context, cfg *config.Config, s *services, d dataset.Dataset, start int) error {
	entries := d.Take(cfg.Dataset.TrainSplit, cfg.Dataset.LimitTrain)
	if len(entries) == 0 {
		return fmt.Errorf("the manifest has no %q split", cfg.Dataset.TrainSplit)
	}
	last := cfg.Train.Stage.Epochs
	if cfg.Feeder.Epochs > 0 {
		last = cfg.Feeder.Epochs
	}
	if start > last {
		return nil
	}
	f, err := feeder.New(feeder.Config{RunID: cfg.Run.ID, Seed: uint64(cfg.Run.Seed), StartEpoch: uint32(start),
		Epochs: uint32(last - start + 1)}, entries)
	if err != nil {
		return err
	}
	events := s.bus.Events()
	return f.Run(ctx, feeder.Publish(s.bus.Publisher()), events.Publish, feeder.Trained(events, cfg.Run.ID))
}

func runFeed(ctx context.Context, e *env) error {
	s, err := open(ctx, e, "feeder", true)
	if err != nil {
		return err
	}
	defer s.close()
	d, err := loadDataset(ctx, e.cfg, s.store)
	if err != nil {
		return err
	}
	if err := feed(ctx, e.cfg, s, d, e.opts.startEpoch); err != nil {
		return err
	}
	s.log.Info("all epochs fed", "run_id", e.cfg.Run.ID)
	return nil
}
