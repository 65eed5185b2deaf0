package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/metrics"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/stages/train"
	"github.com/supflow/supflow/store"
)

// loadDataset reads the manifest, classes and info of the configured data
// set: training never lists the bucket.
func loadDataset(ctx context.Context, cfg *config.Config, s *store.Client) (dataset.Dataset, error) {
	d, err := dataset.Load(ctx, s, cfg.Dataset.Prefix)
	if err != nil {
		return d, datasetError(s, cfg.Dataset.Prefix, err)
	}
	return d, channelsFit(cfg, s.Bucket(), d.Info)
}

// channelsFit refuses a decode.gray that disagrees with the data set's
// channels, which the encoder takes: decode would make images the trainer
// and the evaluation refuse one by one (every sample dead-lettered, then
// "none of the samples could be loaded").
func channelsFit(cfg *config.Config, bucket string, info dataset.Info) error {
	if gray := info.Channels == 1; gray != cfg.Decode.Gray {
		return usageError{fmt.Errorf("decode.gray is %v, but the data set s3://%s/%s has %d channel(s) (its info.json), which the encoder takes: set decode.gray: %v",
			cfg.Decode.Gray, bucket, cfg.Dataset.Prefix, info.Channels, gray)}
	}
	return nil
}

// datasetError says to ingest first when the data set is not there.
func datasetError(s *store.Client, prefix string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no data set under s3://%s/%s (%w): run `supflow ingest` first", s.Bucket(), prefix, err)
	}
	return err
}

// scoring is how images of d are presented to the frozen encoder.
func scoring(cfg *config.Config, d dataset.Dataset) evaluate.Scoring {
	return evaluate.Scoring{Size: cfg.Augment.Size, Channels: d.Info.Channels, Classes: len(d.Classes), Workers: 4}
}

// newTrainStage builds the train stage on s for data set d, resuming when
// asked.
func newTrainStage(ctx context.Context, e *env, s *services, d dataset.Dataset, resume bool) (*train.Stage, error) {
	cfg := e.cfg
	tr, err := newEngine(cfg, e.getenv, s, d)
	if err != nil {
		return nil, err
	}
	deps := train.Deps{Engine: tr, Store: s.store, Events: s.bus.Events(), DeadLetters: s.bus, Log: s.log, Progress: e.term.progress}
	if deps.Metrics, err = metrics.NewTrainer(s.reg, cfg.Run.ID); err != nil {
		return nil, err
	}
	st := cfg.Train.Stage
	if n := len(d.Take(cfg.Dataset.TrainSplit, cfg.Dataset.LimitTrain, uint64(cfg.Run.Seed))); st.DropLast && n < st.BatchSize {
		return nil, usageError{fmt.Errorf("train.drop_last with train.batch_size %d would never step: the %q split has %d images", st.BatchSize, cfg.Dataset.TrainSplit, n)}
	}
	if mon := st.Monitor; mon.Every > 0 {
		load, err := newLoader(cfg, s.store)
		if err != nil {
			return nil, err
		}
		sc := scoring(cfg, d)
		sc.KNN = mon.KNN
		bank := d.Take(cfg.Dataset.TrainSplit, mon.Samples, uint64(cfg.Run.Seed))
		query := d.Take(cfg.Dataset.TestSplit, max(1, mon.Samples/2), uint64(cfg.Run.Seed))
		if deps.Monitor, err = evaluate.NewMonitor(sc, cfg.Run.ID, bank, query, load, tr); err != nil {
			return nil, err
		}
	}
	st.RunID, st.Arch, st.Resume = cfg.Run.ID, cfg.Model.Arch, resume
	st.Views, st.Size, st.Channels = cfg.Augment.NViews, cfg.Augment.Size, d.Info.Channels
	st.Classes = tr.LabelClasses()
	return train.New(ctx, st, deps)
}

// runTrainStage mounts the views edge on st and trains; it returns the key
// of the last checkpoint.
func runTrainStage(ctx context.Context, cfg *config.Config, s *services, st *train.Stage) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A trainer that died (kill -9, OOM) held up to the train consumer's
	// in-flight window unacknowledged for its AckWait: release them at
	// once. There is one trainer per bus (another one would take, and
	// drop, this one's views anyway).
	if err := s.bus.ResetConsumer(ctx, s.topology, messages.TopicViews); err != nil {
		return "", err
	}
	router, err := s.bus.NewRouter(bus.RouterConfig{Logger: s.log, Registerer: s.reg})
	if err != nil {
		return "", err
	}
	in := make(chan train.Delivery)
	// A message of several view groups is settled sample by sample: the
	// trainer acks, naks or rejects each as it does a single one.
	sink := bus.Sink("train", messages.TopicViews, messages.UnmarshalViewGroups,
		func(ctx context.Context, d *bus.Delivery[[]messages.ViewGroup]) error {
			parts := d.Parts(len(d.Value), func(i int) ([]byte, error) { return messages.MarshalViewGroup(d.Value[i]) })
			for i, p := range parts {
				select {
				case in <- train.Delivery{Msg: d.Value[i], Ack: p.Ack, Nak: p.Nak, Reject: p.DeadLetter}:
				case <-ctx.Done():
					for _, p := range parts[i:] {
						_ = p.Nak()
					}
					return nil
				}
			}
			return nil
		})
	if err := router.Add(sink); err != nil {
		return "", err
	}
	routerDone := make(chan error, 1)
	go func() {
		err := router.Run(ctx)
		// A router that could not bind (the consumer just reset and not
		// yet served by a JetStream cluster) would otherwise leave the
		// stage waiting for views for ever: stop it, and exit with the
		// router's error so that the restart policy starts it again.
		cancel()
		routerDone <- err
	}()
	s.log.Info("stage running", "run_id", cfg.Run.ID, "start_epoch", st.StartEpoch())
	key, err := st.Run(ctx, in)
	cancel()
	if rerr := <-routerDone; rerr != nil && !errors.Is(rerr, context.Canceled) && (err == nil || errors.Is(err, context.Canceled)) {
		err = rerr
	}
	return key, err
}

func runTrain(ctx context.Context, e *env) error {
	s, err := open(ctx, e, "train", true)
	if err != nil {
		return err
	}
	defer s.close()
	d, err := loadDataset(ctx, e.cfg, s.store)
	if err != nil {
		return err
	}
	st, err := newTrainStage(ctx, e, s, d, e.opts.resume)
	if err != nil {
		return err
	}
	key, err := runTrainStage(ctx, e.cfg, s, st)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "pretraining done: checkpoint s3://%s/%s\n", s.store.Bucket(), key)
	return nil
}
