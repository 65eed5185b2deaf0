package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// startServer runs an embedded JetStream server for one test.
func startServer(t testing.TB, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	// No deadline: a server that never gets ready fails at the test's
	// timeout, not at one computed before a long, loaded start.
	e, err := StartEmbedded(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func connect(t testing.TB, url string) *Bus {
	t.Helper()
	b, err := Connect(context.Background(), Config{URL: url, Name: t.Name()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// edge is a test pipeline edge with quick redelivery.
func edge(topic, consumer string) WorkQueue {
	return WorkQueue{Topic: topic, Consumer: Consumer{Name: consumer, AckWait: 2 * time.Second, MaxDeliver: 4, MaxAckPending: 16}}
}

func provision(t testing.TB, b *Bus, edges ...WorkQueue) {
	t.Helper()
	if err := b.Provision(context.Background(), Topology{Edges: edges}); err != nil {
		t.Fatal(err)
	}
}

// quick keeps redelivery delays short in tests.
var quick = RouterConfig{NakDelay: 10 * time.Millisecond, NakDelayMax: 50 * time.Millisecond, CloseTimeout: 5 * time.Second}

// runRouter runs routes until the test ends or stop is called.
func runRouter(t *testing.T, b *Bus, cfg RouterConfig, routes ...Route) (stop func() error) {
	t.Helper()
	r, err := b.NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(routes...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = errors.New("router did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("router: %v", err)
		}
	})
	return stop
}

func str(b []byte) (string, error)     { return string(b), nil }
func bytesOf(s string) ([]byte, error) { return []byte(s), nil }

// same is a Handle function that passes its input on.
func same(_ context.Context, s string) (string, error) { return s, nil }

// collector is a Sink that acks everything and records payloads.
type collector struct {
	mu   sync.Mutex
	got  []string
	seen chan struct{}
}

func newCollector() *collector { return &collector{seen: make(chan struct{}, 1<<16)} }

func (c *collector) route(name, topic string) Route {
	return Sink(name, topic, str, func(_ context.Context, d *Delivery[string]) error {
		c.mu.Lock()
		c.got = append(c.got, d.Value)
		c.mu.Unlock()
		c.seen <- struct{}{}
		return d.Ack()
	})
}

// stallLimit is how long a test waits for the next of several deliveries:
// a wait gives up when nothing arrives for that long, not after a total
// that a slow machine could outlast while messages still flow.
const stallLimit = 30 * time.Second

// wait blocks until n messages arrived, then a little more to catch extras.
func (c *collector) wait(t *testing.T, n int) []string {
	t.Helper()
	stalled := time.NewTimer(stallLimit)
	defer stalled.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-c.seen:
			stalled.Reset(stallLimit)
		case <-stalled.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("got %d of %d messages, then none for %v", len(c.got), n, stallLimit)
		}
	}
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// deadLetters reads every message stored in the dead-letter stream.
func deadLetters(t *testing.T, b *Bus, want int) []*nats.Msg {
	t.Helper()
	// No deadline over the whole wait: under -race on a loaded machine
	// fetching megabyte letters takes long; go test's -timeout bounds it,
	// and each request gets the client's own timeout.
	ctx := t.Context()
	var out []*nats.Msg
	for len(out) < want {
		s, err := b.js.Stream(ctx, "supflow_dead_letter")
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().State.Msgs >= uint64(want) {
			for seq := uint64(1); len(out) < want; seq++ {
				m, err := s.GetMsg(ctx, seq)
				if err != nil {
					t.Fatalf("dead letter %d: %v", seq, err)
				}
				out = append(out, &nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header})
			}
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("dead-letter stream has %d messages, want %d", s.CachedInfo().State.Msgs, want)
		case <-time.After(20 * time.Millisecond): // poll the stream's count
		}
	}
	return out
}

func streamMsgs(t *testing.T, b *Bus, name string) uint64 {
	t.Helper()
	s, err := b.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// drained waits until work queue name is empty. Acks and terms go out
// without waiting for the server, so the last may still be on its way when
// a route or Ack returns: a fixed sleep before counting failed under load.
// It fails once the queue stayed non-empty for 30 s of polling: a message
// never settled, not a slow server.
func drained(t *testing.T, b *Bus, name string) {
	t.Helper()
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		n := streamMsgs(t, b, name)
		if n == 0 {
			return
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%d messages left on %s", n, name)
		}
	}
}

func sendAll(t *testing.T, b *Bus, topic string, payloads ...string) {
	t.Helper()
	p := b.Publisher()
	defer p.Close()
	for _, s := range payloads {
		if err := p.Send(context.Background(), topic, []byte(s)); err != nil {
			t.Fatalf("send %q: %v", s, err)
		}
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scrapeCounter reads counter vector name from reg, keyed by its
// handler_name label.
func scrapeCounter(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "handler_name" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
