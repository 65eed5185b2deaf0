package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/messages"
)

// TestRetryRaces: internal server errors, "consumer does not exist" and
// requests that timed out are retried (at most raceAttempts calls), anything else is returned at once.
func TestRetryRaces(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int
		err   error
		calls int
		ok    bool
	}{
		{"recovers", 2, &jetstream.APIError{Code: 500, ErrorCode: 10012}, 3, true},
		{"gives up", 99, &jetstream.APIError{Code: 500, ErrorCode: 10012}, raceAttempts, false},
		{"consumer deleted meanwhile", 1, &jetstream.APIError{Code: 400, ErrorCode: 10149}, 2, true},
		{"client error", 9, &jetstream.APIError{Code: 400, ErrorCode: 10058}, 1, false},
		{"replicas on one server", 9, &jetstream.APIError{Code: 500, ErrorCode: errCodeReplicasUnsupported}, 1, false},
		{"other error", 9, errors.New("boom"), 1, false},
		{"request timed out", 2, context.DeadlineExceeded, 3, true},
		{"nats timeout", 1, nats.ErrTimeout, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retryRaces(context.Background(), func() error {
				calls++
				if calls <= tc.fails {
					return fmt.Errorf("wrapped: %w", tc.err)
				}
				return nil
			})
			if calls != tc.calls || (err == nil) != tc.ok {
				t.Errorf("%d calls, err %v; want %d calls, ok %t", calls, err, tc.calls, tc.ok)
			}
		})
	}
}

// TestPipelineTrainEdge: the train consumer's in-flight window covers two
// batches beyond the other edges' window, in messages of bus.batch samples
// (one, or the default 64), and its AckWait is the others' (the router
// keeps held views alive), so that a view lost with a connection comes
// back after one ack_wait instead of stalling the epoch.
func TestPipelineTrainEdge(t *testing.T) {
	const batch = 50
	for _, per := range []int{1, 0} {
		l := Limits{AckWait: 3 * time.Second, Batch: per}
		topo := Pipeline(l, batch)
		for _, e := range topo.Edges {
			if got := e.Consumer.AckWait; got != 3*time.Second {
				t.Errorf("%s: AckWait %v, want 3s", e.Topic, got)
			}
			// The trainer's Sink counts its window in samples, however
			// many a message holds (TestSinkWindowCountsSamples).
			if samples := e.Consumer.MaxAckPending - defaultMaxAckPending; e.Topic == messages.TopicViews && samples < 2*batch {
				t.Errorf("bus.batch %d: train window %d, %d samples beyond the others', fewer than two batches of %d",
					per, e.Consumer.MaxAckPending, samples, batch)
			}
		}
		if err := topo.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProvisionReplacesAnOlderPushConsumer: an edge provisioned by a
// supflow before pull consumers has a push consumer (deliver subject and
// group), which cannot become a pull consumer in place. Provision replaces
// it, and a message it had delivered and never seen acknowledged (a worker
// of the old version stopped) still reaches the new route.
func TestProvisionReplacesAnOlderPushConsumer(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	e := edge("in", "stage")
	provision(t, b, e, edge("out", "check"))
	ctx := t.Context()
	if err := b.js.DeleteConsumer(ctx, "in", "stage"); err != nil {
		t.Fatal(err)
	}
	deliver := "_supflow_deliver.in.stage"
	if _, err := b.js.CreateOrUpdatePushConsumer(ctx, "in", jetstream.ConsumerConfig{
		Durable: "stage", DeliverSubject: deliver, DeliverGroup: "stage", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Hour, MaxDeliver: -1, FilterSubject: "in",
	}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	old, err := nc.QueueSubscribeSync(deliver, "stage")
	if err != nil {
		t.Fatal(err)
	}
	sendAll(t, b, "in", "x")
	if _, err := old.NextMsg(time.Minute); err != nil {
		t.Fatalf("delivery to the old worker: %v", err)
	}

	r, err := b.NewRouter(quick)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Add(Handle("stage", "in", "out", str, bytesOf, same)); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); !errors.Is(err, ErrRoute) || !strings.Contains(err.Error(), "push consumer") {
		t.Fatalf("a route on the old push consumer: %v, want an ErrRoute naming it", err)
	}

	provision(t, b, e, edge("out", "check"))
	c, err := b.js.Consumer(ctx, "in", "stage")
	if err != nil {
		t.Fatal(err)
	}
	if ds := c.CachedInfo().Config.DeliverSubject; ds != "" {
		t.Fatalf("after Provision: deliver subject %q, want a pull consumer", ds)
	}
	col := newCollector()
	runRouter(t, b, quick,
		Handle("stage", "in", "out", str, bytesOf, func(_ context.Context, s string) (string, error) { return s + "!", nil }),
		col.route("check", "out"))
	if got := col.wait(t, 1); !slices.Equal(got, []string{"x!"}) {
		t.Fatalf("got %v", got)
	}
}

// TestValidateLeavesTheCallersEdges: Validate (and Provision, which
// validates) fills in defaults on its own copy; writing them into the
// caller's edges raced when two goroutines provisioned one Topology (the
// race detector in TestResetWhileProvisioning).
func TestValidateLeavesTheCallersEdges(t *testing.T) {
	topo := Topology{Edges: []WorkQueue{{Topic: "in", Consumer: Consumer{Name: "reader"}}}}
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := topo.Edges[0]; got != (WorkQueue{Topic: "in", Consumer: Consumer{Name: "reader"}}) {
		t.Errorf("Validate changed the caller's edge to %+v", got)
	}
}

// TestProvisionWritesOnlyChanges: a Provision that finds a stream as it
// wants it does not update it (an update races consumer creation inside
// nats-server), and one that changes a limit does. The server announces
// each stream update with an advisory, in order: the advisories up to the
// creation of a last stream must hold exactly the two changes of "in".
func TestProvisionWritesOnlyChanges(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	advisories, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	e := edge("in", "reader")
	for _, maxMsgs := range []int64{100, 100, 200, 200, 300} {
		e.MaxMsgs = maxMsgs
		provision(t, b, e)
	}
	provision(t, b, edge("last", "reader"))
	updates := 0
	for {
		m, err := advisories.NextMsg(time.Minute)
		if err != nil {
			t.Fatalf("waiting for the creation of stream last: %v", err)
		}
		if m.Subject == "$JS.EVENT.ADVISORY.STREAM.UPDATED.in" {
			updates++
		}
		if m.Subject == "$JS.EVENT.ADVISORY.STREAM.CREATED.last" {
			break
		}
	}
	if updates != 2 {
		t.Errorf("%d updates of stream in, want 2: one per change of MaxMsgs, none for the Provisions that changed nothing", updates)
	}
	s, err := b.js.Stream(t.Context(), "in")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxMsgs; got != 300 {
		t.Errorf("MaxMsgs %d, want 300", got)
	}
}
