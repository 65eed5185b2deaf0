package main

import (
	"context"
	"errors"
	"path"
	"slices"
	"time"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/stages/routes"
	"github.com/supflow/supflow/store"
)

// newDecoder builds the decode stage on the store.
func newDecoder(cfg *config.Config, s *store.Client) (*decode.Stage, error) {
	return decode.New(cfg.Decode.Config, decode.Deps{
		Objects:      s,
		IsNotFound:   func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		IsTooLarge:   func(err error) bool { return errors.Is(err, store.ErrTooLarge) },
		IsOutOfRange: func(err error) bool { return errors.Is(err, store.ErrOutOfRange) },
		Allow:        func(key string) error { return dataset.UnderPrefix(key, cfg.Dataset.Prefix) },
		Cache:        store.Blobs{C: s}, // the decode cache: objects of the bucket
		CachePrefix:  path.Join("cache", cfg.Dataset.Prefix),
	})
}

// newAugmenter builds the augment stage from pipeline.yaml.
func newAugmenter(cfg *config.Config) (*augment.Stage, error) {
	a := cfg.Augment
	a.Seed = uint64(cfg.Run.Seed)
	return augment.New(a)
}

// fused names the route of decode workers that also augment
// (decode.augment) for workerRoutes.
const fused = "decode+augment"

// routesOf names the routes a process mounts for the stages it runs
// (decode, augment or both): the stages' own or, with decode.augment, the
// fused route in place of decode's, and in place of augment's too where
// the process runs both (`supflow run`).
func routesOf(cfg *config.Config, stages ...string) []string {
	if !cfg.Decode.Augment || !slices.Contains(stages, "decode") {
		return stages
	}
	return []string{fused}
}

// workerRoutes returns the decode, augment or fused routes as configured.
func workerRoutes(cfg *config.Config, s *services, which ...string) ([]bus.Route, error) {
	var out []bus.Route
	for _, w := range which {
		switch w {
		case "decode":
			st, err := newDecoder(cfg, s.store)
			if err != nil {
				return nil, err
			}
			out = append(out, routes.Decode(cfg.Run.ID, st, cfg.Decode.Workers))
		case "augment":
			st, err := newAugmenter(cfg)
			if err != nil {
				return nil, err
			}
			out = append(out, routes.Augment(cfg.Run.ID, st, cfg.Augment.Workers))
		case fused:
			dec, err := newDecoder(cfg, s.store)
			if err != nil {
				return nil, err
			}
			aug, err := newAugmenter(cfg)
			if err != nil {
				return nil, err
			}
			out = append(out, routes.Fused(cfg.Run.ID, dec, aug, cfg.Decode.Workers))
		}
	}
	return out, nil
}

// runWorker is `supflow decode` and `supflow augment`: one stage on an
// external bus until SIGINT/SIGTERM (main then exits with 128 + the signal).
// `supflow decode --augment` (decode.augment) runs both stages in one
// process (fused).
func runWorker(stage string) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		which := routesOf(e.cfg, stage)[0]
		s, err := open(ctx, e, which, true)
		if err != nil {
			return err
		}
		defer s.close()
		mounted, err := workerRoutes(e.cfg, s, which)
		if err != nil {
			return usageError{err}
		}
		// A decode or augment handler takes well under a second; 10 s bounds
		// the drain, also when a signal lands while subscriptions are still
		// starting (watermill then waits out its whole close timeout).
		r, err := s.bus.NewRouter(bus.RouterConfig{Logger: s.log, Registerer: s.reg, CloseTimeout: 10 * time.Second})
		if err != nil {
			return err
		}
		if err := r.Add(mounted...); err != nil {
			return err
		}
		s.log.Info("stage running", "run_id", e.cfg.Run.ID)
		err = r.Run(ctx)
		if errors.Is(err, context.Canceled) {
			return nil // SIGINT/SIGTERM: drained
		}
		return err
	}
}
