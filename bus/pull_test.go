package bus

import (
	"context"
	"slices"
	"testing"
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
