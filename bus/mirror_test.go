package bus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestMirrorOfWorkQueueStream: a mirror of an edge's work-queue stream
// (what a user adds to watch it) leaves provisioning, the trainer's
// consumer reset and the edge's messages alone on the nats-server go.mod
// pins; the ways operations.md gives to watch an edge without taking
// messages (a core subscription, a get by sequence) see a message while
// it stays queued for the stage.
func TestMirrorOfWorkQueueStream(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	b := connect(t, e.URL())
	ctx := t.Context()
	const topic = "mirrored_wq"
	topo := Topology{Edges: []WorkQueue{edge(topic, "worker")}}
	provision(t, b, topo.Edges...)
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "watch_" + topic, Mirror: &jetstream.StreamSource{Name: topic}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(ctx, topo); err != nil {
		t.Fatalf("provisioning with a mirror: %v", err)
	}
	if err := b.ResetConsumer(ctx, topo, topic); err != nil {
		t.Fatalf("resetting the consumer with a mirror: %v", err)
	}
	sub, err := b.nc.SubscribeSync(topic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.Publish(ctx, topic, []byte("m1")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(30 * time.Second); err != nil || string(m.Data) != "m1" {
		t.Fatalf("core subscription: %v, %v", m, err)
	}
	// The mirror gets a copy...
	oc, err := b.js.OrderedConsumer(ctx, "watch_"+topic, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := oc.Next(); err != nil || string(m.Data()) != "m1" {
		t.Fatalf("mirror: %v, %v", m, err)
	}
	// ...and the work queue keeps the message for the stage; a get by
	// sequence reads it without taking it.
	st, err := b.js.Stream(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := st.GetMsg(ctx, 1); err != nil || string(raw.Data) != "m1" {
		t.Fatalf("get by sequence: %v, %v", raw, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("the work queue holds %d messages after it was mirrored and watched, want 1", info.State.Msgs)
	}
}

// TestProvisionNamesOtherReaders: when the server refuses supflow's
// consumer because something else reads the work-queue stream
// (err_code 10100), the error names that consumer and the stream's
// mirror, and says what to do.
func TestProvisionNamesOtherReaders(t *testing.T) {
	e := startServer(t, EmbeddedConfig{})
	b := connect(t, e.URL())
	ctx := t.Context()
	const topic = "observed_wq"
	topo := Topology{Edges: []WorkQueue{edge(topic, "worker")}}
	provision(t, b, topo.Edges...)
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "watch_" + topic, Mirror: &jetstream.StreamSource{Name: topic}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.CreateOrUpdateConsumer(ctx, topic, jetstream.ConsumerConfig{Durable: "peek", FilterSubject: topic, AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Fatal("the server let a second consumer read the work queue")
	}
	if err := b.js.DeleteConsumer(ctx, topic, "worker"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.CreateOrUpdateConsumer(ctx, topic, jetstream.ConsumerConfig{Durable: "peek", FilterSubject: topic, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	err := b.Provision(ctx, topo)
	if !errors.Is(err, ErrTopology) || !isWorkQueueConflict(err) {
		t.Fatalf("provisioning beside another consumer: %v", err)
	}
	t.Log(err)
	for _, want := range []string{"other consumers: peek", "mirroring or sourcing it: watch_" + topic, "nats consumer rm " + topic, "core NATS subscription on subject " + topic} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
