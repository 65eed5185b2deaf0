package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/messages"
)

// TestRetryRaces: internal server errors and "consumer does not exist" are
// retried (at most raceAttempts calls), anything else is returned at once.
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
			samples := orDefault(per, defaultBatch) * (e.Consumer.MaxAckPending - defaultMaxAckPending)
			if e.Topic == messages.TopicViews && samples < 2*batch {
				t.Errorf("bus.batch %d: train window %d messages, %d beyond the others', fewer than two batches of %d samples",
					per, e.Consumer.MaxAckPending, samples, batch)
			}
		}
		if err := topo.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}
