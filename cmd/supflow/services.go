package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/metrics"
	"github.com/supflow/supflow/store"
	"github.com/supflow/supflow/xla"
)

// services are the servers a command talks to, embedded or external, and
// what it must close on the way out (in reverse order).
type services struct {
	store   *store.Client
	bus     *bus.Bus
	reg     *prometheus.Registry
	closers []func() error
	log     *slog.Logger
	// runner is backend xla's device, loaded by the first newEngine.
	runner xla.Runner
	// topology is what openBus provisioned.
	topology bus.Topology
}

// open starts what a command needs: the metrics endpoint, the store and,
// when withBus, the bus. On error everything opened so far is closed.
func open(ctx context.Context, e *env, name string, withBus bool) (*services, error) {
	getenv := e.getenv
	s := &services{log: e.log}
	if name != "" {
		s.log = e.log.With("stage", name)
	}
	err := s.serveMetrics(e.cfg.Metrics.Addr)
	if err == nil {
		err = s.openStore(ctx, e.cfg, getenv)
	}
	if err == nil && withBus {
		err = s.openBus(ctx, e.cfg, cmp.Or(name, "run"), getenv)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *services) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			s.log.Warn("shutdown", "error", err)
		}
	}
}

// openStore connects to the configured S3 endpoint, or starts the embedded
// one with its data under the work dir (kept between runs, so a second
// demo skips the ingest). The bucket is created when missing.
func (s *services) openStore(ctx context.Context, cfg *config.Config, getenv func(string) string) error {
	// Credentials come only from the environment (see secretEnv).
	sc := store.ConfigFromEnv(cfg.Store.Config, getenv)
	if cfg.Store.Embedded {
		emb, err := store.StartEmbedded(ctx, filepath.Join(cfg.Run.WorkDir, "s3"))
		if err != nil {
			return fmt.Errorf("embedded S3: %w", err)
		}
		s.closers = append(s.closers, emb.Close)
		sc = emb.Config(cfg.Store.Bucket)
	}
	c, err := store.New(sc)
	if err != nil {
		return err
	}
	if err := c.EnsureBucket(ctx); err != nil {
		return err
	}
	s.store = c
	return nil
}

// openBus connects to NATS, or starts a private embedded server, and
// provisions the topology.
func (s *services) openBus(ctx context.Context, cfg *config.Config, name string, getenv func(string) string) error {
	bc := cfg.Bus.Config.WithEnv(getenv)
	bc.Name = "supflow-" + name
	var emb *bus.Embedded
	if cfg.Bus.Embedded {
		var private bus.Config
		var err error
		emb, private, err = bus.StartPrivate(ctx, bc.Name, cfg.Bus.MaxPayload)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, emb.Close)
		bc = private
	}
	b, err := bus.Connect(ctx, bc, s.log)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, b.Close)
	s.topology = topology(cfg, emb)
	if l := cfg.Bus.Limits.Resolve(emb); emb != nil && l.Storage != cfg.Bus.Storage && l.Storage == bus.StorageFile {
		s.log.Info("bus.storage auto: image and view streams in files, the embedded server's memory cannot hold both at bus.stream_max_bytes",
			"jetstream_memory", emb.MaxMemory(), "stream_max_bytes", l.MaxBytes)
	}
	if err := b.Provision(ctx, s.topology); err != nil {
		return err
	}
	s.bus = b
	return nil
}

// topology maps pipeline.yaml onto the streams and consumers, bus.storage
// auto resolved for emb, this process's embedded server (nil: an external
// one).
func topology(cfg *config.Config, emb *bus.Embedded) bus.Topology {
	return bus.Pipeline(cfg.Bus.Limits.Resolve(emb), cfg.Train.Stage.BatchSize)
}

// serveMetrics exposes /metrics (and /healthz) when metrics.addr is set.
func (s *services) serveMetrics(addr string) error {
	s.reg = metrics.NewRegistry()
	if addr == "" {
		return nil
	}
	srv, err := metrics.Serve(addr, s.reg)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, srv.Close)
	s.log.Info("serving metrics", "addr", srv.Addr())
	return nil
}
