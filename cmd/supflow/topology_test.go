package main

import (
	"testing"
	"time"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/messages"
)

// TestTopologyTrainEdge: the train consumer's in-flight window covers two
// batches, and its AckWait is bus.ack_wait like every other edge's (the
// router keeps held views alive), so that a view lost with a connection
// comes back after one ack_wait instead of stalling the epoch.
func TestTopologyTrainEdge(t *testing.T) {
	cfg := config.Default()
	cfg.Bus.AckWait = config.Duration(3 * time.Second)
	cfg.Train.BatchSize = 50
	for _, e := range topology(cfg).Edges {
		if got := e.Consumer.AckWait; got != 3*time.Second {
			t.Errorf("%s: AckWait %v, want bus.ack_wait (3s)", e.Topic, got)
		}
		if e.Topic == messages.TopicViews && e.Consumer.MaxAckPending < 2*cfg.Train.BatchSize {
			t.Errorf("train window %d < two batches of %d", e.Consumer.MaxAckPending, cfg.Train.BatchSize)
		}
	}
}
