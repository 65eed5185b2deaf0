package bus

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	StoreDir   string // JetStream file store; required
	Host       string // listen address; default 127.0.0.1
	Port       int    // -1 picks a free port; 0 means NATS' default 4222
	MaxPayload int    // bytes per message, headers included (Limits.MaxPayload); 0 means 1 MiB
	User       string // optional: require this user ...
	Password   string // ... with this password
}

// ErrEmbedded reports an embedded server that could not start.
var ErrEmbedded = errors.New("bus: embedded nats-server")

// maxServerPayload is nats-server's hard limit on max_payload.
const maxServerPayload = 64 << 20

// Embedded is a running in-process nats-server. Close is idempotent and safe
// for concurrent use.
type Embedded struct {
	srv     *server.Server
	once    sync.Once
	scratch string // StartPrivate's store folder, removed on Close
}

// StartEmbedded starts the server and waits until it accepts connections or
// ctx ends.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("%w: StoreDir is required", ErrEmbedded)
	}
	if cfg.MaxPayload < 0 || cfg.MaxPayload > maxServerPayload {
		return nil, fmt.Errorf("%w: MaxPayload %d not in [0, %d]", ErrEmbedded, cfg.MaxPayload, maxServerPayload)
	}
	if (cfg.User == "") != (cfg.Password == "") {
		return nil, fmt.Errorf("%w: User and Password go together", ErrEmbedded)
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	srv, err := server.NewServer(&server.Options{
		Host:       host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		MaxPayload: int32(cfg.MaxPayload),
		Username:   cfg.User,
		Password:   cfg.Password,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	start := time.Now()
	srv.Start()
	// Wait until the server is ready or ctx ends, polling: a wait computed
	// from ctx's deadline before Start could already be spent by a slow
	// JetStream recovery on a busy machine.
	for !srv.ReadyForConnections(250 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			srv.Shutdown()
			return nil, fmt.Errorf("%w: not ready after %v: %w", ErrEmbedded, time.Since(start).Round(time.Millisecond), err)
		}
	}
	return &Embedded{srv: srv}, nil
}

// URL is the client URL, e.g. nats://127.0.0.1:41234.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// MaxMemory is the server's JetStream memory in bytes: what its memory
// streams may reserve together (their MaxBytes), by default three
// quarters of the machine's memory.
func (e *Embedded) MaxMemory() int64 {
	if c := e.srv.JetStreamConfig(); c != nil {
		return c.MaxMemory
	}
	return 0
}

// Close shuts the server down and waits for it to stop.
func (e *Embedded) Close() error {
	var err error
	e.once.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		if e.scratch != "" {
			err = os.RemoveAll(e.scratch)
		}
	})
	return err
}

// StartPrivate starts a server for one process on a free port of
// 127.0.0.1: its JetStream store is a fresh temporary folder, removed on
// Close (the streams are that run's scratch), and it requires a random
// password, since other users of the machine can reach 127.0.0.1 too. It
// returns the server and the Config (named name) that connects to it, in
// process (Config.InProcess).
func StartPrivate(ctx context.Context, name string, maxPayload int) (*Embedded, Config, error) {
	dir, err := os.MkdirTemp("", "supflow-nats-")
	if err != nil {
		return nil, Config{}, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	user, pass := "supflow", rand.Text()
	e, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: dir, Port: -1, MaxPayload: maxPayload, User: user, Password: pass})
	if err != nil {
		os.RemoveAll(dir)
		return nil, Config{}, err
	}
	e.scratch = dir
	return e, Config{URL: e.URL(), Name: name, User: user, Password: pass, InProcess: e.srv}, nil
}
