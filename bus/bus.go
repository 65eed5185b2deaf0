package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrConnect wraps a failure to reach NATS or its JetStream API.
var ErrConnect = errors.New("bus: connect")

// Bus is a connection to NATS JetStream. It is safe for concurrent use;
// Close is idempotent.
type Bus struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	logger *slog.Logger
	once   sync.Once

	mu     sync.Mutex
	memory map[string]memoryEdge // by topic: what recreate creates again
}

// Connect dials NATS and checks that JetStream answers. It does not retry: a
// wrong URL or wrong credentials fail at once with one error naming the
// (redacted) URL. logger may be nil.
func Connect(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Bus{cfg: cfg, logger: logger}
	nc, err := b.dial(ctx, cfg.Name)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, cfg.redactedURL(), err)
	}
	// jetstream applies its default timeout (5 s) when ctx has no deadline.
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w: %s: JetStream unavailable: %w", ErrConnect, cfg.redactedURL(), err)
	}
	b.nc, b.js = nc, js
	return b, nil
}

// dial opens one more connection with the bus settings: each Handle route
// reads and acknowledges on its own, so that routes do not share one
// connection's read loop.
func (b *Bus) dial(ctx context.Context, name string) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnect, err)
	}
	timeout := b.cfg.ConnectTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = time.Until(d)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(timeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.logger.Warn("nats disconnected", "conn_name", name, "error", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { b.logger.Info("nats reconnected", "conn_name", name) }),
	}
	c := b.cfg
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("%w: nkey seed file %s: %w", ErrConnect, c.NKeySeedFile, err)
		}
		opts = append(opts, opt)
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	if c.InProcess != nil {
		opts = append(opts, nats.InProcessServer(c.InProcess))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w%s", ErrConnect, c.redactedURL(), err, c.explain(err))
	}
	return nc, nil
}

// explain says what to check for the failures whose nats.go text leaves the
// cause open; it never repeats a secret.
func (c Config) explain(err error) string {
	switch {
	case errors.Is(err, nats.ErrAuthorization) && c.auth() == "none":
		return " (no credentials configured)"
	case errors.Is(err, nats.ErrAuthorization):
		return " (check the credentials: " + c.auth() + ")"
	case errors.Is(err, nats.ErrTLS) && c.CertFile == "" && strings.Contains(err.Error(), "after TLS handshake"):
		return " (the server may require a client certificate: set the cert and key files)"
	}
	return ""
}

// MaxPayload is the server's max_payload in bytes, headers included.
func (b *Bus) MaxPayload() int64 { return b.nc.MaxPayload() }

// Close flushes pending acknowledgements and closes the connection.
func (b *Bus) Close() error {
	var err error
	b.once.Do(func() {
		if ferr := b.nc.FlushTimeout(2 * time.Second); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("bus: close: %w", ferr)
		}
		b.nc.Close()
	})
	return err
}
