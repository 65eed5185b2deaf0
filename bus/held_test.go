package bus

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestHandleKeepsWhatItHoldsAlive: the server pushes a Handle route up to
// MaxAckPending messages at once, more than its one worker handles within
// AckWait, and a handler call may itself outlast AckWait. Neither a message
// waiting for the worker nor one being handled may be redelivered: each is
// handled once. Before the fix, messages waiting in the client past AckWait
// came back as copies behind the others, and the copies outnumbered the
// work (the HA compose's decode stall, issue 15), and a call longer than
// AckWait had its context cancelled and was redelivered without end.
func TestHandleKeepsWhatItHoldsAlive(t *testing.T) {
	const ackWait = 2 * time.Second
	for _, tc := range []struct {
		name string
		n    int           // messages
		work time.Duration // each handler call
	}{
		{"queued past ack wait", 80, 50 * time.Millisecond},
		{"a call longer than ack wait", 2, ackWait + ackWait/2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, EmbeddedConfig{})
			b := connect(t, srv.URL())
			provision(t, b, WorkQueue{Topic: "in", Consumer: Consumer{Name: "stage", AckWait: ackWait, MaxDeliver: 100, MaxAckPending: 1000}},
				edge("out", "check"))
			var mu sync.Mutex
			calls := map[string]int{}
			col := newCollector()
			runRouter(t, b, quick,
				Handle("stage", "in", "out", str, bytesOf, func(ctx context.Context, s string) (string, error) {
					mu.Lock()
					calls[s]++
					mu.Unlock()
					select { // the work: an I/O that honours ctx
					case <-time.After(tc.work):
						return s, nil
					case <-ctx.Done():
						return "", ctx.Err()
					}
				}),
				col.route("check", "out"))
			want := numbered("m", tc.n)
			sendAll(t, b, "in", want...)
			got := col.wait(t, tc.n)
			slices.Sort(got)
			if !slices.Equal(slices.Compact(got), want) {
				t.Fatalf("outputs %v, want %v", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range want {
				if calls[s] != 1 {
					t.Errorf("%s handled %d times, want 1", s, calls[s])
				}
			}
		})
	}
}

// TestHandleWorkersBoundTheCalls: a route with n workers has up to n
// handler calls at once, and no more, although the server pushes the
// whole window to it. The first n calls wait for each other: with fewer
// workers they would wait for ever.
func TestHandleWorkersBoundTheCalls(t *testing.T) {
	const workers = 3
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, edge("in", "stage"), edge("out", "check"))
	var mu sync.Mutex
	cur, most := 0, 0
	all := make(chan struct{}) // closed when workers calls were in at once
	var once sync.Once
	col := newCollector()
	runRouter(t, b, quick,
		Handle("stage", "in", "out", str, bytesOf, func(ctx context.Context, s string) (string, error) {
			mu.Lock()
			cur++
			most = max(most, cur)
			if cur == workers {
				once.Do(func() { close(all) })
			}
			mu.Unlock()
			defer func() { mu.Lock(); cur--; mu.Unlock() }()
			select {
			case <-all:
				return s, nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}).Workers(workers),
		col.route("check", "out"))
	want := numbered("m", 2*workers)
	sendAll(t, b, "in", want...)
	got := col.wait(t, len(want))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != workers {
		t.Fatalf("%d calls at once, want %d", most, workers)
	}
}
