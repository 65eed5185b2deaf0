package bus

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
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
	if info.NumAckPending != 2 || info.NumPending != 8 {
		t.Fatalf("with both workers busy: %d delivered and unacknowledged, %d waiting; want 2 and 8",
			info.NumAckPending, info.NumPending)
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
	p := newPuller(nil, 1, time.Minute, backoff{}, slog.New(slog.DiscardHandler))
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
