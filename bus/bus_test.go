package bus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/config/field/fieldtest"
	"github.com/supflow/supflow/messages"
)

// TestConfigValidate: each bad field is one error naming its key (the bus
// section's key in pipeline.yaml where it is one), never repeating a secret.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		key  string // "" when valid
		want string // also in the message
	}{
		{"minimal", Config{URL: "nats://127.0.0.1:4222"}, "", ""},
		{"cluster", Config{URL: "nats://a:4222, tls://b:4222", CredsFile: "x.creds"}, "", ""},
		{"mutual tls", Config{URL: "tls://a:4222", CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}, "", ""},
		{"no url", Config{}, "url", "a nats:// URL"},
		{"bad scheme", Config{URL: "http://a:4222"}, "url", "nats://, tls://"},
		{"no host", Config{URL: "nats://"}, "url", "with a host"},
		{"password alone", Config{URL: "nats://a", Password: "hunter2"}, "password", "set with user"},
		{"user alone", Config{URL: "nats://a", User: "u"}, "user", "set with password"},
		{"two auth methods", Config{URL: "nats://a", Token: "s3cret", CredsFile: "x.creds"}, "creds_file", "one authentication method"},
		{"url and config creds", Config{URL: "nats://u:hunter2@a", Token: "s3cret"}, "url", "no credentials in the URL"},
		{"cert without key", Config{URL: "tls://a", CertFile: "c.pem"}, "key_file", "go together"},
		{"key without cert", Config{URL: "tls://a", KeyFile: "k.pem"}, "cert_file", "go together"},
		{"negative timeout", Config{URL: "nats://a", ConnectTimeout: -1}, "connect_timeout", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			fe := field.List(err)
			if !errors.Is(err, ErrConfig) || len(fe) != 1 || fe[0].Key != tt.key || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one ErrConfig naming %s containing %q", err, tt.key, tt.want)
			}
			for _, secret := range []string{"hunter2", "s3cret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

// TestLimitsValidate: each limit out of range is one error naming its key;
// DefaultLimits is valid and what Pipeline takes for zeros.
func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Limits)
		key  string
	}{
		{"defaults", func(*Limits) {}, ""},
		{"ack_wait below 1s", func(l *Limits) { l.AckWait = time.Millisecond }, "ack_wait"},
		{"ack_wait above 1h", func(l *Limits) { l.AckWait = 2 * time.Hour }, "ack_wait"},
		{"max_deliver 0", func(l *Limits) { l.MaxDeliver = 0 }, "max_deliver"},
		{"max_ack_pending above 10000", func(l *Limits) { l.MaxAckPending = 10001 }, "max_ack_pending"},
		{"max_payload below 64 KiB", func(l *Limits) { l.MaxPayload = 1000 }, "max_payload"},
		{"max_payload above the server's", func(l *Limits) { l.MaxPayload = maxServerPayload + 1 }, "max_payload"},
		{"stream_max_msgs below 16", func(l *Limits) { l.MaxMsgs = 15 }, "stream_max_msgs"},
		{"stream_max_bytes below 1 MiB", func(l *Limits) { l.MaxBytes = 1000 }, "stream_max_bytes"},
		{"stream_max_bytes below max_payload", func(l *Limits) { l.MaxBytes, l.MaxPayload = 2<<20, 4<<20 }, "stream_max_bytes"},
		{"replicas 0", func(l *Limits) { l.Replicas = 0 }, "replicas"},
		{"replicas above 5", func(l *Limits) { l.Replicas = 6 }, "replicas"},
		{"storage unknown", func(l *Limits) { l.Storage = "disk" }, "storage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := DefaultLimits()
			tt.edit(&l)
			err := l.Validate()
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := fieldtest.Check(err, tt.key, ErrConfig); err != nil {
				t.Error(err)
			}
		})
	}
	withDefaults, err := Pipeline(DefaultLimits(), 100).checked()
	if err != nil {
		t.Fatal(err)
	}
	zeros, err := Pipeline(Limits{}, 100).checked()
	if err != nil || !reflect.DeepEqual(withDefaults, zeros) {
		t.Errorf("Pipeline's defaults differ from DefaultLimits (%v)", err)
	}
}

func TestLimitsResolve(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		storage string
		memory  int64 // the server's JetStream memory; negative: not embedded
		want    string
	}{
		{StorageAuto, 2 * gib, StorageMemory},
		{StorageAuto, 2*gib - 1, StorageFile}, // the two streams of 1 GiB would not fit
		{StorageAuto, -1, StorageFile},
		{"", 8 * gib, StorageMemory},
		{"", -1, StorageFile},
		{StorageFile, 8 * gib, StorageFile},
		{StorageMemory, -1, StorageMemory},
	}
	for _, tt := range tests {
		got := Limits{Storage: tt.storage, Batch: 7}.resolve(tt.memory)
		if got.Storage != tt.want || got.Batch != 7 {
			t.Errorf("Limits{Storage: %q} on memory %d: %+v, want storage %q and the rest kept", tt.storage, tt.memory, got, tt.want)
		}
		memory := Pipeline(got, 100).Edges[2].Memory
		if memory != (tt.want == StorageMemory) {
			t.Errorf("storage %q: the view stream's Memory is %v", tt.want, memory)
		}
	}
	if got := (Limits{MaxBytes: 64 << 20}).resolve(128 << 20).Storage; got != StorageMemory {
		t.Errorf("streams of 64 MiB on 128 MiB of memory: %s", got)
	}

	e, _, err := StartPrivate(t.Context(), "resolve", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.MaxMemory() <= 0 {
		t.Errorf("MaxMemory %d", e.MaxMemory())
	}
	if got, want := DefaultLimits().Resolve(e).Storage, DefaultLimits().resolve(e.MaxMemory()).Storage; got != want {
		t.Errorf("Resolve on the embedded server: %s, want %s", got, want)
	}
	if got := DefaultLimits().Resolve(nil).Storage; got != StorageFile {
		t.Errorf("Resolve on another server: %s", got)
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	c := Config{URL: "nats://u:hunter2@a:4222", User: "u", Password: "s3cret", Token: "s3cret"}
	for _, s := range []string{c.String(), fmt.Sprint(c.LogValue())} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "s3cret") {
			t.Fatalf("secret in %q", s)
		}
	}
}

func TestConnectFailsFast(t *testing.T) {
	e := startServer(t, EmbeddedConfig{User: "supflow", Password: "right-password"})
	tests := []struct {
		name string
		cfg  Config
	}{
		{"nothing listens", Config{URL: "nats://127.0.0.1:1"}},
		{"wrong password", Config{URL: e.URL(), User: "supflow", Password: "wrong-password"}},
		{"no credentials", Config{URL: e.URL()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			b, err := Connect(context.Background(), tt.cfg, nil)
			if err == nil {
				b.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, ErrConnect) {
				t.Fatalf("err = %v, want ErrConnect", err)
			}
			if strings.Contains(err.Error(), "password") && strings.Contains(err.Error(), "wrong-password") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v to fail", d)
			}
		})
	}
	b, err := Connect(context.Background(), Config{URL: e.URL(), User: "supflow", Password: "right-password"}, nil)
	if err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	b.Close()
}

func TestStartEmbeddedRejectsBadConfig(t *testing.T) {
	for _, cfg := range []EmbeddedConfig{{}, {StoreDir: t.TempDir(), MaxPayload: 65 << 20}, {StoreDir: t.TempDir(), User: "u"}} {
		if _, err := StartEmbedded(context.Background(), cfg); !errors.Is(err, ErrEmbedded) {
			t.Errorf("%+v: err = %v, want ErrEmbedded", cfg, err)
		}
	}
}

func TestTopologyValidate(t *testing.T) {
	tests := []struct {
		name string
		top  Topology
		ok   bool
	}{
		{"default", DefaultTopology(), true},
		{"dotted topic", Topology{Edges: []WorkQueue{{Topic: "a.b", Consumer: Consumer{Name: "c"}}}}, false},
		{"no consumer", Topology{Edges: []WorkQueue{{Topic: "a"}}}, false},
		{"twice", Topology{Edges: []WorkQueue{edge("a", "c"), edge("a", "d")}}, false},
		{"reserved topic", Topology{Edges: []WorkQueue{edge(messages.TopicEvents, "c")}}, false},
		{"negative", Topology{Edges: []WorkQueue{{Topic: "a", MaxMsgs: -1, Consumer: Consumer{Name: "c"}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.top.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrTopology)) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	for i := 0; i < 2; i++ {
		if err := b.Provision(context.Background(), DefaultTopology()); err != nil {
			t.Fatalf("provision %d: %v", i, err)
		}
	}
}

// TestProvisionReplicas: every stream gets Topology.Replicas copies (1 by
// default), and a single server refuses 3 with an error naming the stream
// instead of running unreplicated.
func TestProvisionReplicas(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	ctx := context.Background()
	if err := b.Provision(ctx, Pipeline(DefaultLimits(), 100)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{messages.TopicDecodeTasks, messages.TopicViews, messages.TopicEvents, messages.TopicDeadLetter} {
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 1 {
			t.Errorf("%s: %d replicas, want 1", name, r)
		}
	}
	l := DefaultLimits()
	l.Replicas = 3
	err := b.Provision(ctx, Pipeline(l, 100))
	if !errors.Is(err, ErrTopology) || !strings.Contains(err.Error(), "stream "+messages.TopicDecodeTasks) ||
		!strings.Contains(err.Error(), "replicas > 1 not supported") {
		t.Errorf("R3 on one server: %v, want ErrTopology naming the stream", err)
	}
	if err := (Topology{Replicas: 6}).Validate(); !errors.Is(err, ErrTopology) {
		t.Errorf("Topology{Replicas: 6}: %v", err)
	}
}

func TestHandleRoundTrip(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "upper"), edge("out", "check"))
	col := newCollector()
	cfg := quick
	cfg.Registerer = reg
	runRouter(t, b, cfg,
		Handle("upper", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
			return strings.ToUpper(s), nil
		}).Workers(2),
		col.route("check", "out"))
	sendAll(t, b, "in", "a", "b", "c")
	got := col.wait(t, 3)
	slices.Sort(got)
	if !slices.Equal(got, []string{"A", "B", "C"}) {
		t.Fatalf("got %v", got)
	}
	if n := counterValue(t, reg, "supflow_bus_messages_out_total", "upper"); n != 3 {
		t.Fatalf("out counter %v, want 3", n)
	}
	drained(t, b, "in")
}

func counterValue(t *testing.T, reg *prometheus.Registry, name, handler string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "handler_name" && l.GetValue() == handler {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{handler_name=%q}", name, handler)
	return 0
}

func TestTwoWorkersSplitWork(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	b1, b2 := connect(t, e.URL()), connect(t, e.URL())
	provision(t, b1, edge("in", "work"), edge("out", "check"))
	var mu sync.Mutex
	byWorker := map[string]int{}
	worker := func(id string) Route {
		return Handle("work", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
			time.Sleep(time.Millisecond)
			mu.Lock()
			byWorker[id]++
			mu.Unlock()
			return s, nil
		})
	}
	runRouter(t, b1, quick, worker("w1"))
	runRouter(t, b2, quick, worker("w2"))
	col := newCollector()
	runRouter(t, b1, quick, col.route("check", "out"))
	want := numbered("m", 200)
	sendAll(t, b1, "in", want...)
	got := col.wait(t, len(want))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d messages (duplicates or losses), want %d", len(got), len(want))
	}
	mu.Lock()
	defer mu.Unlock()
	if byWorker["w1"] == 0 || byWorker["w2"] == 0 || byWorker["w1"]+byWorker["w2"] != len(want) {
		t.Fatalf("split %v, want both workers busy and %d in all", byWorker, len(want))
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name       string
		payload    string
		fn         func(context.Context, string) (string, error)
		wantReason string
		wantDeliv  string
		wantClass  string
	}{
		{"permanent error", "poison", func(context.Context, string) (string, error) {
			return "", messages.Permanent(errors.New("corrupt image"))
		}, "corrupt image", "1", reasonPermanent},
		{"malformed payload", "\x00not a message", func(context.Context, string) (string, error) {
			return "", errors.New("fn must not be called")
		}, "decode input", "1", reasonMalformed},
		{"transient until max deliver", "flaky", func(context.Context, string) (string, error) {
			return "", errors.New("s3 unavailable")
		}, "gave up after 4 deliveries: s3 unavailable", "4", reasonMaxDeliver},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := connect(t, startServer(t, EmbeddedConfig{}).URL())
			provision(t, b, edge("in", "stage"), edge("out", "check"))
			decode := func(p []byte) (string, error) {
				if p[0] == 0 {
					return "", errors.New("bad header")
				}
				return string(p), nil
			}
			reg := prometheus.NewRegistry()
			cfg := quick
			cfg.Registerer = reg
			runRouter(t, b, cfg, Handle("stage", "in", "out", decode, bytesOf, tt.fn))
			sendAll(t, b, "in", tt.payload)
			dl := deadLetters(t, b, 1)[0]
			if string(dl.Data) != tt.payload {
				t.Fatalf("dead letter payload %q, want the original %q", dl.Data, tt.payload)
			}
			if r := dl.Header.Get(messages.MetaReason); !strings.Contains(r, tt.wantReason) {
				t.Fatalf("reason %q, want it to contain %q", r, tt.wantReason)
			}
			h := dl.Header
			if h.Get(messages.MetaSourceTopic) != "in" || h.Get(messages.MetaHandler) != "stage" || h.Get(messages.MetaDeliveries) != tt.wantDeliv {
				t.Fatalf("headers %v", h)
			}
			if strings.Contains(fmt.Sprint(h), metaDelivered) {
				t.Fatalf("internal metadata leaked: %v", h)
			}
			if got := scrapeDeadLettered(t, reg); len(got) != 1 || got["stage/"+tt.wantClass] != 1 {
				t.Fatalf("dead_lettered counters %v, want stage/%s 1", got, tt.wantClass)
			}
			drained(t, b, "in")
		})
	}
}

func TestTransientErrorIsRedelivered(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	var calls atomic.Int32
	col := newCollector()
	runRouter(t, b, quick,
		Handle("stage", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
			if calls.Add(1) < 3 {
				return "", errors.New("temporarily unavailable")
			}
			return s + "!", nil
		}),
		col.route("check", "out"))
	sendAll(t, b, "in", "x")
	if got := col.wait(t, 1); !slices.Equal(got, []string{"x!"}) {
		t.Fatalf("got %v", got)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
	if n := streamMsgs(t, b, "supflow_dead_letter"); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

func TestInProcessRetry(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	var calls atomic.Int32
	col := newCollector()
	cfg := quick
	cfg.Retries, cfg.RetryInterval = 2, time.Millisecond
	runRouter(t, b, cfg,
		Handle("stage", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
			if calls.Add(1) < 3 {
				return "", errors.New("blip")
			}
			return s, nil
		}),
		col.route("check", "out"))
	sendAll(t, b, "in", "x")
	col.wait(t, 1)
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3 (two in-process retries)", n)
	}
}

func TestSkip(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	col := newCollector()
	runRouter(t, b, quick,
		Handle("stage", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
			if strings.HasPrefix(s, "other-run") {
				return "", messages.Skip(nil)
			}
			return s, nil
		}),
		col.route("check", "out"))
	sendAll(t, b, "in", "other-run-1", "mine")
	if got := col.wait(t, 1); !slices.Equal(got, []string{"mine"}) {
		t.Fatalf("got %v", got)
	}
	drained(t, b, "in")
	if n := streamMsgs(t, b, "supflow_dead_letter"); n != 0 {
		t.Fatalf("%d dead-lettered", n)
	}
}

func TestBackPressure(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	in := edge("in", "slow")
	in.MaxMsgs = 4
	provision(t, b, in, edge("out", "check"))
	col := newCollector()
	runRouter(t, b, quick,
		Handle("slow", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
			time.Sleep(2 * time.Millisecond)
			return s, nil
		}),
		col.route("check", "out"))
	want := numbered("p", 60)
	p := b.Publisher()
	defer p.Close()
	var wg sync.WaitGroup
	errs := make(chan error, len(want))
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(want); i += 3 {
				errs <- p.Send(context.Background(), "in", []byte(want[i]))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := col.wait(t, len(want))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got %d messages, want %d exactly once", len(got), len(want))
	}
}

func TestStreamFullBlocksUntilContextEnds(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	in := edge("in", "nobody")
	in.MaxMsgs = 1
	provision(t, b, in)
	sendAll(t, b, "in", "first")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	p := b.Publisher()
	defer p.Close()
	start := time.Now()
	err := p.Send(ctx, "in", []byte("second"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("err = %v after %v, want to wait for room until the deadline", err, time.Since(start))
	}
}

func TestPublishErrors(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{MaxPayload: 4096}).URL())
	provision(t, b, edge("in", "stage"))
	if b.MaxPayload() != 4096 {
		t.Fatalf("max payload %d", b.MaxPayload())
	}
	p := b.Publisher()
	tests := []struct {
		name    string
		topic   string
		size    int
		want    []error
		contain string
	}{
		{"too large", "in", 5000, []error{ErrTooLarge, messages.ErrPermanent}, "max_payload is 4096"},
		{"headers push it over", "in", 4096 - 10, []error{ErrTooLarge}, "headers included"},
		{"no stream", "nowhere", 10, []error{ErrNoStream}, "provision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Send(context.Background(), tt.topic, make([]byte, tt.size))
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Fatalf("err = %v, want %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tt.contain) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.contain)
			}
		})
	}
	p.Close()
	if err := p.Send(context.Background(), "in", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestRouteErrors(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "stage"))
	ok := Handle("stage", "in", "out", str, bytesOf, same)
	tests := []struct {
		name   string
		routes []Route
		atRun  bool
	}{
		{"zero route", []Route{{}}, false},
		{"bad workers", []Route{ok.Workers(0)}, false},
		{"duplicate", []Route{ok, ok}, false},
		{"dotted name", []Route{Handle("a.b", "in", "out", str, bytesOf, same)}, false},
		{"missing consumer", []Route{Handle("ghost", "in", "out", str, bytesOf, same)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := b.NewRouter(quick)
			if err != nil {
				t.Fatal(err)
			}
			err = r.Add(tt.routes...)
			if !tt.atRun {
				if !errors.Is(err, ErrRoute) {
					t.Fatalf("Add: err = %v, want ErrRoute", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.Run(ctx); !errors.Is(err, ErrRoute) || !strings.Contains(err.Error(), "provision") {
				t.Fatalf("Run: err = %v, want ErrRoute naming provisioning", err)
			}
		})
	}
}

// TestRunDrainsInFlight cancels Run while a handler works: the handler must
// finish, its output be published and its input acknowledged, not redelivered.
func TestRunDrainsInFlight(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	in := edge("in", "stage")
	in.Consumer.AckWait = 30 * time.Second
	provision(t, b, in, edge("out", "check"))
	started := make(chan struct{})
	var ctxErr atomic.Value
	stop := runRouter(t, b, quick, Handle("stage", "in", "out", str, bytesOf, func(ctx context.Context, s string) (string, error) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		ctxErr.Store(fmt.Sprint(ctx.Err()))
		return s, nil
	}))
	sendAll(t, b, "in", "x")
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := ctxErr.Load(); got != "<nil>" {
		t.Fatalf("handler context ended during the drain: %v", got)
	}
	if m := streamMsgs(t, b, "out"); m != 1 {
		t.Fatalf("%d outputs, want 1", m)
	}
	drained(t, b, "in")
}

// TestSinkKeepsHeldMessagesAlive holds deliveries for several AckWaits, both
// while they wait behind a slow call (queued) and after the function took
// them (a batch): the router's InProgress keeps every one from coming back.
func TestSinkKeepsHeldMessagesAlive(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	q := edge("views", "train")
	q.Consumer.AckWait = time.Second
	provision(t, b, q)
	var (
		mu   sync.Mutex
		held []*Delivery[string]
	)
	runRouter(t, b, quick, Sink("train", "views", str, func(_ context.Context, d *Delivery[string]) error {
		mu.Lock()
		held = append(held, d)
		first := len(held) == 1
		mu.Unlock()
		if first {
			time.Sleep(3500 * time.Millisecond) // the others wait in the queue
		}
		return nil
	}))
	sendAll(t, b, "views", numbered("v", 5)...)
	time.Sleep(7 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(held) != 5 {
		t.Fatalf("%d deliveries after 7 AckWaits, want 5 (no redelivery)", len(held))
	}
	for _, d := range held {
		if d.Deliveries() != 1 {
			t.Errorf("%s delivered %d times", d.Value, d.Deliveries())
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	drained(t, b, "views")
}

// TestSinkAcksLater holds deliveries like a trainer batching samples, and
// acks them together; a nacked one comes back.
func TestSinkAcksLater(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("views", "train"))
	batch := make(chan *Delivery[string], 16)
	runRouter(t, b, quick, Sink("train", "views", str, func(_ context.Context, d *Delivery[string]) error {
		batch <- d
		return nil
	}))
	sendAll(t, b, "views", "a", "b", "c")
	var held []*Delivery[string]
	for len(held) < 3 {
		select {
		case d := <-batch:
			held = append(held, d)
		case <-time.After(30 * time.Second):
			t.Fatalf("got %d deliveries held at once, want 3", len(held))
		}
	}
	if err := held[0].Nak(); err != nil {
		t.Fatal(err)
	}
	if err := held[0].Ack(); !errors.Is(err, ErrSettled) {
		t.Fatalf("ack after nak: %v", err)
	}
	for _, d := range held[1:] {
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case d := <-batch:
		if d.Value != held[0].Value || d.Deliveries() != 2 {
			t.Fatalf("redelivered %q (delivery %d), want %q (2)", d.Value, d.Deliveries(), held[0].Value)
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nacked delivery not redelivered")
	}
	drained(t, b, "views")
}

func TestEvents(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	if err := b.Provision(context.Background(), Topology{}); err != nil {
		t.Fatal(err)
	}
	ev := b.Events()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, e := range []messages.Event{
		{RunID: "other", Kind: messages.EventEpochEnd, Epoch: 1},
		{RunID: "r1", Kind: messages.EventEpochStart, Epoch: 1, Count: 10},
		{RunID: "r1", Kind: messages.EventEpochEnd, Epoch: 1, Count: 10},
	} {
		if err := ev.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A late reader still sees earlier events; a waiter sees later ones.
	got, err := ev.Wait(ctx, "r1", messages.EventEpochEnd, nil)
	if err != nil || got.Epoch != 1 || got.Count != 10 {
		t.Fatalf("got %+v, %v", got, err)
	}
	done := make(chan messages.Event, 1)
	go func() {
		e, err := ev.Wait(ctx, "r1", messages.EventPretrainDone, func(e messages.Event) bool { return e.Ref != "" })
		if err != nil {
			t.Error(err)
		}
		done <- e
	}()
	time.Sleep(50 * time.Millisecond)
	if err := ev.Publish(ctx, messages.Event{RunID: "r1", Kind: messages.EventPretrainDone, Ref: "ckpt/final"}); err != nil {
		t.Fatal(err)
	}
	if e := <-done; e.Ref != "ckpt/final" {
		t.Fatalf("got %+v", e)
	}
	sub, err := ev.Subscribe(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []messages.EventKind
	for e := range sub {
		kinds = append(kinds, e.Kind)
		if len(kinds) == 3 {
			break
		}
	}
	if !slices.Equal(kinds, []messages.EventKind{messages.EventEpochStart, messages.EventEpochEnd, messages.EventPretrainDone}) {
		t.Fatalf("kinds %v", kinds)
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := ev.Wait(short, "r1", messages.EventEvalDone, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a missing event: %v", err)
	}
	// An event with scores (wire version 2) on the same stream as the
	// version 1 events above.
	scored := messages.Event{RunID: "r1", Kind: messages.EventEvalDone, Ref: "report.html", Info: "linear_top1=0.9700",
		Scores: []messages.Score{{Name: messages.ScoreLinearTop1, Value: 0.97}, {Name: messages.ScoreKNNTop1, Value: 0.95}}}
	if err := ev.Publish(ctx, scored); err != nil {
		t.Fatal(err)
	}
	if got, err := ev.Wait(ctx, "r1", messages.EventEvalDone, nil); err != nil || !reflect.DeepEqual(got, scored) {
		t.Fatalf("scored event: got %+v, %v; want %+v", got, err, scored)
	}
	if err := ev.Publish(ctx, messages.Event{}); !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("publish invalid event: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{base: time.Second, max: 5 * time.Second}
	for _, tt := range []struct {
		n    uint64
		want time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 5 * time.Second}, {100, 5 * time.Second}} {
		if got := b.WaitTime(tt.n); got != tt.want {
			t.Errorf("WaitTime(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

func TestWithoutOutputID(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "upper"), edge("out", "check"))
	runRouter(t, b, quick, Handle("upper", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	}).WithoutOutputID())
	sendAll(t, b, "in", "a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := b.js.Stream(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	var raw *jetstream.RawStreamMsg
	for raw == nil {
		if raw, err = st.GetMsg(ctx, 1); err != nil {
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if string(raw.Data) != "A" || raw.Header.Get(nats.MsgIdHdr) != "" {
		t.Fatalf("output %q with headers %v, want A without %s", raw.Data, raw.Header, nats.MsgIdHdr)
	}
}

// TestStartPrivate: the private server refuses a client without its
// random password, accepts the returned Config, which reaches it in
// process (even with a URL where nothing listens), and Close removes its
// scratch store.
func TestStartPrivate(t *testing.T) {
	e, cfg, err := StartPrivate(t.Context(), "private", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(t.Context(), Config{URL: cfg.URL, Name: "intruder"}, nil); err == nil {
		t.Error("a client without the password connected")
	}
	if cfg.InProcess == nil {
		t.Fatal("the returned Config connects over the socket")
	}
	noSocket := cfg
	noSocket.URL = "nats://127.0.0.1:1"
	for _, c := range []Config{cfg, noSocket} {
		b, err := Connect(t.Context(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	dir := e.scratch
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("scratch store %s left behind: %v", dir, err)
	}
}
