package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/runs"
)

// runAll is `supflow run`: ingest, feeder, decode, augment, train and
// evaluate in one process, by default on an embedded NATS server and an
// embedded S3 endpoint. The stages talk over the bus exactly as separate
// processes do; with decode.augment, decode and augment are one fused
// route, as in `supflow decode --augment`.
func runAll(ctx context.Context, e *env) error {
	cfg := e.cfg
	start := time.Now()
	s, err := open(ctx, e, "", true)
	if err != nil {
		return err
	}
	defer s.close()
	// A local source is uploaded only where objects changed; source s3 is
	// indexed again only when its listing changed.
	if err := ingest(ctx, e, s, nil); err != nil {
		return err
	}
	d, err := loadDataset(ctx, cfg, s.store)
	if err != nil {
		return err
	}
	st, err := newTrainStage(ctx, e, s, d, e.opts.resume)
	if err != nil {
		return err
	}
	names := routesOf(cfg, "decode", "augment")
	mounted, err := workerRoutes(cfg, s, names...)
	if err != nil {
		return usageError{err}
	}
	router, err := s.bus.NewRouter(bus.RouterConfig{Logger: s.log, Registerer: s.reg})
	if err != nil {
		return err
	}
	if err := router.Add(mounted...); err != nil {
		return err
	}
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	errc := make(chan error, 2)
	go func() { errc <- ignoreCanceled(router.Run(wctx)) }()
	s.log.Info("workers running", "routes", strings.Join(names, " "))
	train := dataset.List(d.Take(cfg.Dataset.TrainSplit, cfg.Dataset.LimitTrain, uint64(cfg.Run.Seed)))
	go func() { errc <- ignoreCanceled(feed(wctx, cfg, s, train, st.StartEpoch())) }()

	// The trainer runs in the foreground; a failing worker or feeder stops it.
	tctx, stopTrain := context.WithCancelCause(ctx)
	defer stopTrain(nil)
	go func() {
		for range 2 {
			if err := <-errc; err != nil {
				stopTrain(err)
				return
			}
		}
	}()
	key, err := runTrainStage(tctx, cfg, s, st)
	if cause := context.Cause(tctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	stopWorkers()
	if err != nil {
		return err
	}
	ev, err := newEvaluateStage(ctx, e, s)
	if err != nil {
		return err
	}
	out, err := ev.Run(ctx, key)
	if err != nil {
		return err
	}
	s.log.Info("run complete", "seconds", time.Since(start).Round(time.Second).Seconds())
	printResult(e, out)
	return nil
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// runReport re-renders the run's report (report.json in the bucket) into
// --out (default <work_dir>/<run_id>).
func runReport(ctx context.Context, e *env) error {
	s, err := open(ctx, e, "", false)
	if err != nil {
		return err
	}
	defer s.close()
	b, err := s.store.Get(ctx, runs.Key(e.cfg.Run.ID, runs.ReportJSON))
	if err != nil {
		return fmt.Errorf("report of run %q: %w", e.cfg.Run.ID, err)
	}
	rep, err := report.ReadJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	dir := cmp.Or(e.opts.outDir, filepath.Join(e.cfg.Run.WorkDir, e.cfg.Run.ID))
	f, err := report.Save(dir, rep)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, printable(f.HTMLPath))
	return nil
}
