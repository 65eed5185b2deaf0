package bus

import (
	"context"
	"testing"
	"time"

	"github.com/supflow/supflow/messages"
)

// TestEventReadersLeaveNoConsumer: every Wait and Subscribe reads through
// an ordered consumer of its own; once the reader is done its consumer must
// be gone, not kept by the server for its inactive threshold (a feeder
// waits once per epoch).
func TestEventReadersLeaveNoConsumer(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	if err := b.Provision(context.Background(), Topology{}); err != nil {
		t.Fatal(err)
	}
	ev := b.Events()
	for e := uint32(1); e <= 3; e++ {
		if err := ev.Publish(context.Background(), messages.Event{RunID: "r", Kind: messages.EventEpochTrained, Epoch: e}); err != nil {
			t.Fatal(err)
		}
		if _, err := ev.Wait(context.Background(), "r", messages.EventEpochTrained,
			func(x messages.Event) bool { return x.Epoch == e }); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := ev.Subscribe(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(stallLimit) // the server deletes them after the call returns
	for {
		s, err := b.js.Stream(context.Background(), messages.TopicEvents)
		if err != nil {
			t.Fatal(err)
		}
		n := s.CachedInfo().State.Consumers
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left on the events stream after every reader stopped", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
