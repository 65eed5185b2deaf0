package bus

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/supflow/supflow/messages"
)

func TestDeadLettersStream(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	runRouter(t, b, quick, Handle("stage", "in", "out", func(p []byte) (string, error) { return string(p), nil }, bytesOf,
		func(context.Context, string) (string, error) {
			return "", messages.Permanent(errors.New("corrupt image"))
		}))
	sendAll(t, b, "in", "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dls, err := b.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]messages.DeadLetter{}
	for dl := range dls {
		got[string(dl.Payload)] = dl
		if len(got) == 2 {
			break
		}
	}
	for _, p := range []string{"a", "b"} {
		dl, ok := got[p]
		if !ok || dl.SourceTopic != "in" || dl.Handler != "stage" || dl.Reason == "" {
			t.Errorf("dead letter %q = %+v", p, dl)
		}
	}
}

// TestDeliveryDeadLetter: a Sink gives a decoded message up for good; it
// lands on the dead-letter stream with the router's headers, is counted,
// and is not redelivered. If the dead-letter stream cannot take it, the
// message is nacked and comes back instead of being lost.
func TestDeliveryDeadLetter(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("views", "train"))
	reg := prometheus.NewRegistry()
	cfg := quick
	cfg.Registerer = reg
	got := make(chan *Delivery[string], 16)
	runRouter(t, b, cfg, Sink("train", "views", str, func(_ context.Context, d *Delivery[string]) error {
		got <- d
		return nil
	}))
	next := func() *Delivery[string] {
		t.Helper()
		select {
		case d := <-got:
			return d
		case <-time.After(5 * time.Second):
			t.Fatal("no delivery")
			return nil
		}
	}

	sendAll(t, b, "views", "wrong shape")
	d := next()
	if err := d.DeadLetter(messages.Permanent(errors.New("3x3 views, want 2x2"))); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(); !errors.Is(err, ErrSettled) {
		t.Fatalf("ack after dead letter: %v", err)
	}
	if err := d.DeadLetter(errors.New("again")); !errors.Is(err, ErrSettled) {
		t.Fatalf("second dead letter: %v", err)
	}
	dl := deadLetters(t, b, 1)[0]
	h := dl.Header
	if string(dl.Data) != "wrong shape" || h.Get(messages.MetaSourceTopic) != "views" || h.Get(messages.MetaHandler) != "train" ||
		h.Get(messages.MetaDeliveries) != "1" || !strings.Contains(h.Get(messages.MetaReason), "rejected: permanent failure: 3x3 views, want 2x2") {
		t.Fatalf("dead letter %q, headers %v", dl.Data, h)
	}
	select {
	case d := <-got:
		t.Fatalf("dead-lettered message redelivered (delivery %d)", d.Deliveries())
	case <-time.After(300 * time.Millisecond):
	}
	if n := streamMsgs(t, b, "views"); n != 0 {
		t.Fatalf("%d messages left on the input", n)
	}
	if c := scrapeDeadLettered(t, reg); len(c) != 1 || c["train/"+reasonRejected] != 1 {
		t.Fatalf("dead_lettered counters %v, want train/rejected 1", c)
	}

	// Without a dead-letter stream the publish fails: nacked, redelivered.
	if err := b.js.DeleteStream(context.Background(), messages.TopicDeadLetter); err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, "views", "no dead-letter stream")
	d = next()
	if err := d.DeadLetter(messages.Permanent(errors.New("bad"))); !errors.Is(err, ErrNoStream) {
		t.Fatalf("dead letter without its stream: %v, want ErrNoStream", err)
	}
	d = next()
	if d.Value != "no dead-letter stream" || d.Deliveries() != 2 {
		t.Fatalf("redelivered %q (delivery %d), want the nacked message again", d.Value, d.Deliveries())
	}
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
	if c := scrapeDeadLettered(t, reg); c["train/"+reasonRejected] != 1 {
		t.Fatalf("dead_lettered counters %v: a failed dead letter was counted", c)
	}
}
