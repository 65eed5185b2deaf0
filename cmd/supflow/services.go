package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/store"
)

// services are the servers a command talks to, embedded or external, and
// what it must close on the way out (in reverse order).
type services struct {
	store   *store.Client
	bus     *bus.Bus
	reg     *prometheus.Registry
	closers []func() error
	log     *slog.Logger
}

// open starts what a command needs: the metrics endpoint, the store and,
// when withBus, the bus. On error everything opened so far is closed.
func open(ctx context.Context, e *env, name string, withBus bool) (*services, error) {
	getenv, err := secretEnv(os.Getenv)
	if err != nil {
		return nil, usageError{err}
	}
	s := &services{log: e.log}
	if name != "" {
		s.log = e.log.With("stage", name)
	}
	err = s.serveMetrics(e.cfg.Metrics.Addr)
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
	var sc store.Config
	if cfg.Store.Embedded {
		dir := filepath.Join(cfg.Run.WorkDir, "s3")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		emb, err := store.StartEmbedded(ctx, dir)
		if err != nil {
			return fmt.Errorf("embedded S3: %w", err)
		}
		s.closers = append(s.closers, emb.Close)
		sc = emb.Config(cfg.Store.Bucket)
	} else {
		// Credentials come only from the environment (see secretEnv).
		sc = store.ConfigFromEnv(cfg.Store.Config, getenv)
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

// busConfig builds the NATS connection config; secrets come from the
// environment or files only (see secretEnv).
func busConfig(c config.Bus, url, name string, getenv func(string) string) bus.Config {
	bc := c.Config
	bc.URL, bc.Name = url, name
	bc.User, bc.Password, bc.Token = getenv(envNATSUser), getenv(envNATSPassword), getenv(envNATSToken)
	return bc
}

// openBus connects to NATS, or starts the embedded server with a fresh
// JetStream store (streams are a run's scratch), and provisions the topology.
func (s *services) openBus(ctx context.Context, cfg *config.Config, name string, getenv func(string) string) error {
	bc := busConfig(cfg.Bus, cfg.Bus.URL, "supflow-"+name, getenv)
	if cfg.Bus.Embedded {
		dir, err := os.MkdirTemp("", "supflow-nats-")
		if err != nil {
			return err
		}
		// A random password per process, like the embedded S3 endpoint's
		// keys: other users of the machine can reach 127.0.0.1 too.
		user, pass := "supflow", rand.Text()
		emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{StoreDir: dir, Port: -1, MaxPayload: cfg.Bus.MaxPayload, User: user, Password: pass})
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		s.closers = append(s.closers, func() error { err := emb.Close(); os.RemoveAll(dir); return err })
		bc = bus.Config{URL: emb.URL(), Name: bc.Name, User: user, Password: pass}
	}
	b, err := bus.Connect(ctx, bc, s.log)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, b.Close)
	if err := b.Provision(ctx, topology(cfg)); err != nil {
		return err
	}
	s.bus = b
	return nil
}

// topology maps pipeline.yaml onto the streams and consumers.
func topology(cfg *config.Config) bus.Topology {
	return bus.Pipeline(cfg.Bus.Limits, cfg.Train.Stage.BatchSize)
}

// serveMetrics exposes /metrics (and /healthz) when metrics.addr is set.
func (s *services) serveMetrics(addr string) error {
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	s.log.Info("serving metrics", "addr", addr)
	return nil
}
