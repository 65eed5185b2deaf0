package main

import (
	"context"
	"fmt"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/feeder"
)

// feed publishes epochs start..cfg.Train.Epochs of the training split. Each
// epoch after the first waits for the trainer's EpochTrained event of the
// one before, so epochs never interleave and the streams never hold more
// than one epoch.
func feed(ctx context.Context, cfg *config.Config, b *bus.Bus, d dataset.Dataset, start int) error {
	entries := d.Split(cfg.Dataset.TrainSplit)
	if cfg.Dataset.LimitTrain > 0 && len(entries) > cfg.Dataset.LimitTrain {
		entries = entries[:cfg.Dataset.LimitTrain]
	}
	if len(entries) == 0 {
		return fmt.Errorf("the manifest has no %q split", cfg.Dataset.TrainSplit)
	}
	epochs := cfg.Train.Epochs
	if cfg.Feeder.Epochs > 0 {
		epochs = cfg.Feeder.Epochs
	}
	if start > epochs {
		return nil
	}
	f, err := feeder.New(feeder.Config{RunID: cfg.Run.ID, Seed: uint64(cfg.Run.Seed), StartEpoch: uint32(start),
		Epochs: uint32(epochs - start + 1)}, entries)
	if err != nil {
		return err
	}
	pub, events := b.Publisher(), b.Events()
	publish := func(ctx context.Context, t messages.DecodeTask) error {
		p, err := messages.MarshalDecodeTask(t)
		if err != nil {
			return err
		}
		return pub.Send(ctx, messages.TopicDecodeTasks, p)
	}
	for e := start; e <= epochs; e++ {
		if e > start {
			prev := uint32(e - 1)
			if _, err := events.Wait(ctx, cfg.Run.ID, messages.EventEpochTrained,
				func(ev messages.Event) bool { return ev.Epoch == prev }); err != nil {
				return err
			}
		}
		if err := f.RunEpoch(ctx, uint32(e), publish, events.Publish); err != nil {
			return err
		}
	}
	return nil
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
	if err := feed(ctx, e.cfg, s.bus, d, e.opts.startEpoch); err != nil {
		return err
	}
	s.log.Info("all epochs fed", "run_id", e.cfg.Run.ID)
	return nil
}
