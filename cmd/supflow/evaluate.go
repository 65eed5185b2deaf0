package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/metrics"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/store"
)

// newEvaluateStage builds the evaluate stage on s; without a bus it can
// only evaluate a named checkpoint.
func newEvaluateStage(ctx context.Context, e *env, s *services) (*evaluate.Stage, error) {
	cfg := e.cfg
	d, err := loadDataset(ctx, cfg, s.store)
	if err != nil {
		return nil, err
	}
	tr, err := newEngine(cfg, e.getenv, s, d)
	if err != nil {
		return nil, err
	}
	load, err := newLoader(cfg, s.store)
	if err != nil {
		return nil, err
	}
	sc := scoring(cfg, d)
	sc.Probe = cfg.Evaluate.Probe
	sc.Probe.Standardize, sc.Probe.Seed = true, uint64(cfg.Run.Seed)
	sc.Probe.Progress = func(p probe.EpochStats) {
		s.log.Debug("linear probe", "epoch", p.Epoch, "loss", p.Loss, "train_top1", p.Accuracy, "lr", p.LR)
	}
	// One kNN temperature, the train section's: the score uses the
	// monitor's.
	sc.KNN = cfg.Evaluate.KNN(cfg.Train.Stage.Monitor.KNN.Temperature)
	sc.Protocol, sc.Augment, sc.Seed = cfg.Evaluate.Protocol, cfg.Augment.Config, uint64(cfg.Run.Seed)
	deps := evaluate.Deps{Engine: tr, Load: load, Store: s.store, Log: s.log}
	if deps.Metrics, err = metrics.NewEvaluator(s.reg, cfg.Run.ID); err != nil {
		return nil, err
	}
	if s.bus != nil {
		deps.Events = s.bus.Events()
	}
	test := d.Take(cfg.Dataset.TestSplit, cfg.Dataset.LimitTest, uint64(cfg.Run.Seed))
	if len(test) == 0 {
		return nil, fmt.Errorf("the manifest has no %q split to evaluate on", cfg.Dataset.TestSplit)
	}
	return evaluate.New(evaluate.Config{
		RunID: cfg.Run.ID, Dataset: cfg.Dataset.Name, Method: cfg.Train.Engine.Method, Arch: cfg.Model.Arch,
		Train: d.Take(cfg.Dataset.TrainSplit, cfg.Dataset.LimitTrain, uint64(cfg.Run.Seed)), Test: test, Classes: d.Classes,
		WorkDir: cfg.Run.WorkDir, Scoring: sc,
	}, deps)
}

// newLoader is how the evaluation, the kNN monitor and embed read images:
// through a decode stage's planned path (Plan, HandleTask), so that a
// sharded data set's neighbours are fetched with one ranged GET, or read
// from their decoded shard, as in training.
func newLoader(cfg *config.Config, s *store.Client) (evaluate.Loader, error) {
	dec, err := newDecoder(cfg, s)
	if err != nil {
		return nil, usageError{err}
	}
	return evaluate.Planned(dec.Plan, dec.HandleTask), nil
}

// printResult prints the human summary and the machine-readable last line.
func printResult(e *env, out *evaluate.Outcome) {
	fmt.Fprintf(e.stdout, "linear probe top-1 %.4f, top-5 %.4f; kNN top-1 %.4f\nreport: %s\n",
		out.LinearTop1, out.LinearTop5, out.KNNTop1, printable(out.LocalHTML))
	fmt.Fprintf(e.stdout, "RESULT linear_top1=%.4f knn_top1=%.4f report=%s\n", out.LinearTop1, out.KNNTop1, printable(out.LocalHTML))
}

func runEvaluate(ctx context.Context, e *env) error {
	key := e.opts.checkpoint
	if key != "" {
		if err := store.ValidKey(key); err != nil {
			return usageError{fmt.Errorf("--checkpoint: %w", err)}
		}
	}
	s, err := open(ctx, e, "evaluate", key == "")
	if err != nil {
		return err
	}
	defer s.close()
	if key == "" {
		if key, err = evaluate.WaitCheckpoint(ctx, s.bus.Events(), e.cfg.Run.ID, e.opts.wait, e.log); err != nil {
			if errors.Is(err, evaluate.ErrNotFinished) {
				return fmt.Errorf("%w: pass --wait to wait for it or --checkpoint KEY", err)
			}
			return err
		}
	}
	st, err := newEvaluateStage(ctx, e, s)
	if err != nil {
		return err
	}
	out, err := st.Run(ctx, key)
	if err != nil {
		return err
	}
	printResult(e, out)
	return nil
}
