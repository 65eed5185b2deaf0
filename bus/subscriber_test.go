package bus

import (
	"context"
	"testing"
	"time"
)

// TestDrainNacksAMessageTheRouterNeverTook: a message that arrived as the
// router stopped reading is nacked by Close (for redelivery elsewhere)
// instead of holding Close for its whole timeout, which here is an hour,
// as is AckWait: only the nak brings the message back.
func TestDrainNacksAMessageTheRouterNeverTook(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, WorkQueue{Topic: "in", Consumer: Consumer{Name: "stage", AckWait: time.Hour}})
	r, err := b.NewRouter(quick)
	if err != nil {
		t.Fatal(err)
	}
	rt := Handle("stage", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) { return s, nil })
	cons, err := r.consumer(t.Context(), rt)
	if err != nil {
		t.Fatal(err)
	}
	s := &handleSubscriber{timeout: time.Hour, logger: r.cfg.Logger, name: rt.name,
		start: func(w func(queued, <-chan struct{})) (*routeSub, error) {
			return r.subscribe(t.Context(), b.nc, rt, cons, 1, w)
		}}
	if _, err := s.Subscribe(t.Context(), "in"); err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, "in", "x")
	for { // taken by the worker, which waits for a reader that never comes
		s.run.mu.Lock()
		taken := len(s.run.held) == 1 && len(s.run.queue) == 0
		s.run.mu.Unlock()
		if taken {
			break
		}
		select {
		case <-t.Context().Done():
			t.Fatal("the message never arrived")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := b.nc.QueueSubscribeSync(deliverSubject("in", "stage"), "stage")
	if err != nil {
		t.Fatal(err)
	}
	m, err := again.NextMsg(time.Minute)
	if err != nil {
		t.Fatalf("the message was not nacked: %v", err)
	}
	if string(m.Data) != "x" {
		t.Fatalf("redelivered %q", m.Data)
	}
}
