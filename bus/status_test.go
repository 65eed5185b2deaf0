package bus

import (
	"context"
	"testing"
	"time"
)

// TestStatus reads an edge whose reader holds what it received, and an
// edge that was never provisioned.
func TestStatus(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	held := edge("views", "train")
	provision(t, b, held)
	sendAll(t, b, "views", "a", "b", "c")
	got := make(chan *Delivery[string], 3)
	runRouter(t, b, quick, Sink("train", "views", str, func(_ context.Context, d *Delivery[string]) error {
		got <- d
		return nil
	}))
	for range 3 {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			t.Fatal("deliveries did not arrive")
		}
	}
	// The reader, with free slots, asks again once a request expires:
	// between two, none is open.
	var sts []EdgeStatus
	for {
		var err error
		sts, err = b.Status(context.Background(), Topology{Edges: []WorkQueue{held, edge("never", "nobody")}})
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) != 2 {
			t.Fatalf("%d edges, want 2", len(sts))
		}
		if sts[0].Waiting > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s := sts[0]
	if s.Missing != "" || s.Messages != 3 || s.Undelivered != 0 || s.Unacked != 3 || s.Waiting != 1 ||
		s.MaxAckPending != held.Consumer.MaxAckPending || s.AckWait != held.Consumer.AckWait || s.MaxMsgs != defaultMaxMsgs {
		t.Errorf("held edge: %+v", s)
	}
	if sts[1].Missing != "stream" || sts[1].Topic != "never" {
		t.Errorf("missing edge: %+v", sts[1])
	}
}
