package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/store"
)

// evalOutcome is what an evaluation produced and where its report went.
type evalOutcome struct {
	rep        *report.Report
	localHTML  string
	reportKey  string
	linearTop1 float64
	knnTop1    float64
}

// evaluateCheckpoint freezes the encoder of checkpoint key, scores it with
// a linear probe and kNN, and writes report.json and report.html to the
// bucket and to <work_dir>/<run_id>/.
func evaluateCheckpoint(ctx context.Context, e *env, s *services, key string) (*evalOutcome, error) {
	cfg := e.cfg
	started := time.Now().UTC()
	d, tr, err := trainerFor(ctx, cfg, s.store)
	if err != nil {
		return nil, err
	}
	b, err := s.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("checkpoint s3://%s/%s does not exist: has pretraining of run %s finished?", s.store.Bucket(), key, cfg.Run.ID)
	}
	if err != nil {
		return nil, err
	}
	meta, err := tr.Load(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s does not fit model.* of the configuration: %w", key, err)
	}
	dec, err := newDecoder(cfg, s.store)
	if err != nil {
		return nil, err
	}
	ev := cfg.Evaluate
	ec := evalConfig(cfg, d)
	ec.Probe = probe.Config{Epochs: ev.Epochs, BatchSize: ev.BatchSize, LR: ev.LR, Momentum: ev.Momentum,
		WeightDecay: ev.WeightDecay, Schedule: probe.Schedule(ev.Schedule), Standardize: true, Seed: uint64(cfg.Run.Seed),
		Progress: func(p probe.EpochStats) {
			s.log.Debug("linear probe", "epoch", p.Epoch, "loss", p.Loss, "train_top1", p.Accuracy, "lr", p.LR)
		}}
	ec.KNN = probe.KNNConfig{K: ev.KNNK, Temperature: cfg.Train.KNNTemperature}
	train := tasksOf(cfg.Run.ID, d.Split(cfg.Dataset.TrainSplit), cfg.Dataset.LimitTrain)
	test := tasksOf(cfg.Run.ID, d.Split(cfg.Dataset.TestSplit), cfg.Dataset.LimitTest)
	if len(test) == 0 {
		return nil, fmt.Errorf("the manifest has no %q split to evaluate on", cfg.Dataset.TestSplit)
	}
	s.log.Info("evaluating", "checkpoint", key, "epoch", meta.Epoch, "train_samples", len(train), "test_samples", len(test))
	res, err := evaluate.Evaluate(ctx, ec, train, test, dec.Handle, tr)
	if err != nil {
		return nil, err
	}
	for _, sk := range res.Skipped {
		s.log.Warn("sample left out of the evaluation", "key", sk.Key, "error", sk.Err)
	}
	rep := &report.Report{RunID: cfg.Run.ID, Started: started, Finished: time.Now().UTC(), Dataset: cfg.Dataset.Name,
		Method: cfg.Train.Method, Model: report.Model{Arch: cfg.Model.Arch}}
	if curves, err := readCurves(ctx, cfg, s.store); err == nil {
		rep.Model.Params = curves.Params
		rep.Pretrain, rep.KNN = curves.Points, curves.KNN
		if curves.Seconds > 0 {
			rep.Throughput = append(rep.Throughput, report.Stage{Name: "train", SamplesPerSec: report.Float(float64(curves.Samples) / curves.Seconds)})
		}
	}
	lin := res.Linear
	perClass := make([]report.Float, len(lin.PerClass))
	for i, v := range lin.PerClass {
		perClass[i] = report.Float(v)
	}
	rep.Linear = &report.Linear{Top1: report.Float(lin.Top1), Top5: report.Float(lin.Top5), Loss: report.Float(lin.Loss),
		Classes: d.Classes, PerClass: perClass, Confusion: lin.Confusion}
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("Checkpoint %s (epoch %d, step %d). Linear probe on %d train / %d test samples; kNN (k=%d) top-1 %.4f.",
			key, meta.Epoch, meta.Step, res.Train, res.Test, ec.KNN.K, res.KNN.Top1))
	if len(res.Skipped) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d samples could not be loaded and were left out (see the log).", len(res.Skipped)))
	}
	out := &evalOutcome{rep: rep, linearTop1: lin.Top1, knnTop1: res.KNN.Top1, reportKey: runKey(cfg, "report.html")}
	if out.localHTML, err = writeReport(ctx, cfg, s.store, rep); err != nil {
		return nil, err
	}
	return out, nil
}

// writeReport stores report.json and report.html in the bucket and in
// <work_dir>/<run_id>/, returning the local HTML path.
func writeReport(ctx context.Context, cfg *config.Config, s *store.Client, rep *report.Report) (string, error) {
	var js, html bytes.Buffer
	if err := report.WriteJSON(&js, rep); err != nil {
		return "", err
	}
	if err := report.WriteHTML(&html, rep); err != nil {
		return "", err
	}
	dir := filepath.Join(cfg.Run.WorkDir, cfg.Run.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for name, b := range map[string][]byte{"report.json": js.Bytes(), "report.html": html.Bytes()} {
		if err := writeFileAtomic(filepath.Join(dir, name), b); err != nil {
			return "", err
		}
		ct := "application/json"
		if filepath.Ext(name) == ".html" {
			ct = "text/html; charset=utf-8"
		}
		if err := s.Put(ctx, runKey(cfg, name), b, store.PutOptions{ContentType: ct}); err != nil {
			return "", err
		}
	}
	abs, err := filepath.Abs(filepath.Join(dir, "report.html"))
	if err != nil {
		return "", err
	}
	return abs, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600; reports are for reading
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// printResult prints the human summary and the machine-readable last line.
func printResult(e *env, out *evalOutcome) {
	fmt.Fprintf(e.stdout, "linear probe top-1 %.4f, top-5 %.4f; kNN top-1 %.4f\nreport: %s\n",
		out.linearTop1, float64(out.rep.Linear.Top5), out.knnTop1, out.localHTML)
	fmt.Fprintf(e.stdout, "RESULT linear_top1=%.4f knn_top1=%.4f report=%s\n", out.linearTop1, out.knnTop1, out.localHTML)
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
		wctx := ctx
		if !e.opts.wait {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
		}
		ev, err := s.bus.Events().Wait(wctx, e.cfg.Run.ID, messages.EventPretrainDone, nil)
		if err != nil {
			if ctx.Err() == nil && !e.opts.wait {
				return fmt.Errorf("pretraining of run %q has not finished (no pretrain-done event): pass --wait to wait for it or --checkpoint KEY", e.cfg.Run.ID)
			}
			return err
		}
		// The event comes over the bus: evaluate only a checkpoint of this run.
		if err := dataset.UnderPrefix(ev.Ref, runKey(e.cfg, "checkpoints")); err != nil {
			return fmt.Errorf("pretrain-done event of run %q: %w", e.cfg.Run.ID, err)
		}
		key = ev.Ref
	}
	out, err := evaluateCheckpoint(ctx, e, s, key)
	if err != nil {
		return err
	}
	if s.bus != nil {
		if err := s.bus.Events().Publish(ctx, messages.Event{RunID: e.cfg.Run.ID, Kind: messages.EventEvalDone, Ref: out.reportKey,
			Info: fmt.Sprintf("linear_top1=%.4f knn_top1=%.4f", out.linearTop1, out.knnTop1)}); err != nil {
			return err
		}
	}
	printResult(e, out)
	return nil
}
