package bus

import (
	"log/slog"
	"testing"
	"time"
)

// TestCloseNacksAMessageTheRouterNeverTook: a message fetched as the
// router stopped reading is nacked by Close (for redelivery elsewhere)
// instead of holding Close for its whole timeout, or its consumer's
// AckWait, both an hour here: before the fix this test hung.
func TestCloseNacksAMessageTheRouterNeverTook(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, WorkQueue{Topic: "in", Consumer: Consumer{Name: "stage", AckWait: time.Hour}})
	sendAll(t, b, "in", "x")
	c := rawConsumer(t, srv.URL(), "in", "stage")
	s := newPullSubscriber(newPuller(b.js, c, 1, time.Hour, backoff{}, slog.New(slog.DiscardHandler)), t.Context(), time.Hour)
	if _, err := s.Subscribe(t.Context(), "in"); err != nil {
		t.Fatal(err)
	}
	// Fetched, and nobody reads the output.
	for {
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fetchN(t, c, 1); n != 1 {
		t.Fatalf("after Close: %d messages available, want the nacked one", n)
	}
}
