package bus

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestHandleRouteHoldsOnlyItsWorkers: a route fetches no more messages than
// it has workers free, so a worker whose handlers all hang (or whose process
// is frozen) holds that many, and the rest stay in the stream for the
// others, although the consumer's window would allow more. (The push
// consumer used before delivered the whole window of 16 to the group.)
func TestHandleRouteHoldsOnlyItsWorkers(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	want := numbered("m", 10)
	sendAll(t, b, "in", want...)
	entered, release := make(chan struct{}, len(want)), make(chan struct{})
	col := newCollector()
	runRouter(t, b, quick,
		Handle("stage", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) {
			entered <- struct{}{}
			<-release
			return s, nil
		}).Workers(2),
		col.route("check", "out"))
	<-entered
	<-entered
	// Both slots are taken: nothing more can have been fetched.
	c := rawConsumer(t, srv.URL(), "in", "stage")
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The stream's count, not the consumer's racy NumPending (see
	// TestSinkWindowCountsSamples): nothing acknowledged yet.
	if n := streamMsgs(t, b, "in"); info.NumAckPending != 2 || n != 10 {
		t.Fatalf("with both workers busy: %d delivered and unacknowledged, %d in the stream; want 2 and 10",
			info.NumAckPending, n)
	}
	close(release)
	got := col.wait(t, len(want))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// ackedMsg is a delivered message that only acknowledges.
type ackedMsg struct{ jetstream.Msg }

func (ackedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1}, nil
}
func (ackedMsg) Ack() error { return nil }

// TestSettleWhileKeeping: a message acknowledged while the keeper scans
// what the puller holds. Settling freed the message's slot (which takes
// the puller's lock) under the message's own lock, and the keeper reads a
// message's state under the puller's lock: each waited for the other for
// good, and the worker never fetched again (a decode process in CI, its two
// slots held by acknowledged messages). Here the test holds the puller's
// lock as the keeper does; with the deadlock, isSettled never returns.
func TestSettleWhileKeeping(t *testing.T) {
	p := newPuller(nil, nil, 1, time.Minute, backoff{}, slog.New(slog.DiscardHandler))
	if p.take() != 1 {
		t.Fatal("want the one slot")
	}
	a := p.hold(ackedMsg{})
	p.mu.Lock() // the keeper, scanning p.held
	acked := make(chan error)
	go func() { acked <- a.ack() }()
	for !a.isSettled() { // the keeper's read of the message's state
		runtime.Gosched()
	}
	p.mu.Unlock()
	if err := <-acked; err != nil {
		t.Fatal(err)
	}
	if n := p.take(); n != 1 {
		t.Fatalf("%d free slots after the ack, want 1", n)
	}
}

// TestRestoresADeletedConsumer: an operator deletes the consumers of a
// running route and of a sink. Each worker finds its consumer gone, creates
// it again as it bound to it (the router's limit in its metadata too), and
// what was published meanwhile, kept by the work-queue stream, arrives.
func TestRestoresADeletedConsumer(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	var logs syncBuffer
	cfg := quick
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	col := newCollector()
	runRouter(t, b, cfg,
		Handle("stage", "in", "out", str, bytesOf, same),
		col.route("check", "out"))
	sendAll(t, b, "in", "before")
	col.wait(t, 1)

	ctx := t.Context()
	want := map[string]jetstream.ConsumerConfig{}
	for stream, name := range map[string]string{"in": "stage", "out": "check"} {
		c := rawConsumer(t, srv.URL(), stream, name)
		want[name] = c.CachedInfo().Config
		if err := b.js.DeleteConsumer(ctx, stream, name); err != nil {
			t.Fatal(err)
		}
	}
	sendAll(t, b, "in", "after1", "after2")
	got := col.wait(t, 2) // and the one before
	slices.Sort(got)
	if w := []string{"after1", "after2", "before"}; !slices.Equal(got, w) {
		t.Fatalf("got %v, want %v", got, w)
	}
	if n := strings.Count(logs.String(), "consumer was missing: created it again"); n != 2 {
		t.Errorf("%d consumers restored, want 2; log:\n%s", n, logs.String())
	}
	for stream, name := range map[string]string{"in": "stage", "out": "check"} {
		have := rawConsumer(t, srv.URL(), stream, name).CachedInfo().Config
		if !sameConsumer(have, want[name]) || have.Metadata[metaMaxDeliver] != want[name].Metadata[metaMaxDeliver] {
			t.Errorf("%s restored as %+v, want %+v", name, have, want[name])
		}
	}
}
