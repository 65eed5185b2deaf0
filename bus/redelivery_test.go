package bus

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestDeliveriesToAStoppedWorkerDoNotExhaustMaxDeliver: a member of the
// deliver group that takes messages and never settles them (a stopped or
// stuck worker) receives every delivery of a message up to MaxDeliver; the
// message must still reach a live worker afterwards, and be processed, not
// be dropped by the server.
func TestDeliveriesToAStoppedWorkerDoNotExhaustMaxDeliver(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	const maxDeliver = 2
	provision(t, b, WorkQueue{Topic: "in", Consumer: Consumer{Name: "stage", AckWait: 300 * time.Millisecond, MaxDeliver: maxDeliver}},
		edge("out", "check"))

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stopped, err := nc.QueueSubscribeSync(deliverSubject("in", "stage"), "stage")
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, "in", "x")
	for i := range maxDeliver {
		if _, err := stopped.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("delivery %d to the stopped worker: %v", i+1, err)
		}
	}
	if err := stopped.Unsubscribe(); err != nil {
		t.Fatal(err)
	}

	col := newCollector()
	runRouter(t, b, quick,
		Handle("stage", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) { return s + "!", nil }),
		col.route("check", "out"))
	if got := col.wait(t, 1); !slices.Equal(got, []string{"x!"}) {
		t.Fatalf("got %v", got)
	}
}

// TestResetConsumerReleasesADeadReadersWindow: a reader that died holding
// the consumer's whole in-flight window blocks every delivery until its
// AckWait; ResetConsumer makes the messages available to a new reader at
// once.
func TestResetConsumerReleasesADeadReadersWindow(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	topo := Topology{Edges: []WorkQueue{{Topic: "in", Consumer: Consumer{Name: "reader", AckWait: time.Hour, MaxAckPending: 3}}}}
	if err := b.Provision(context.Background(), topo); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	dead, err := nc.QueueSubscribeSync(deliverSubject("in", "reader"), "reader")
	if err != nil {
		t.Fatal(err)
	}
	want := numbered("m", 5)
	sendAll(t, b, "in", want...)
	for i := range 3 {
		if _, err := dead.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("delivery %d to the reader that dies: %v", i+1, err)
		}
	}
	nc.Close()

	if err := b.ResetConsumer(context.Background(), topo, "in"); err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	runRouter(t, b, quick, col.route("reader", "in"))
	got := col.wait(t, len(want))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := b.ResetConsumer(context.Background(), topo, "nope"); !errors.Is(err, ErrTopology) {
		t.Fatalf("reset of an unknown edge: %v", err)
	}
}
