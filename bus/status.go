package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EdgeStatus is the state of one pipeline edge: its stream and the
// consumer its stage reads it with. A stalled pipeline shows where it
// stalls: a full stream upstream of an edge whose consumer has its window
// (MaxAckPending) delivered and unacknowledged, or no worker asking.
type EdgeStatus struct {
	Topic    string
	Messages uint64 // stored: published and not yet acknowledged
	Bytes    uint64
	MaxMsgs  int64 // the stream's capacity; publishers wait when it is full

	Consumer      string
	Undelivered   uint64 // stored and not yet delivered
	Unacked       int    // delivered and not yet acknowledged
	MaxAckPending int
	Redelivered   int // unacknowledged messages delivered more than once
	// Waiting is how many pull requests are open: workers with free
	// slots waiting for messages. A worker busy in all its slots has none
	// open (see Unacked); 0 with nothing unacknowledged: no worker runs.
	Waiting int
	AckWait time.Duration
	// Storage is the stream's storage as bus.storage names it
	// (StorageFile, StorageMemory), or the topology's where it is missing:
	// a NATS restart loses a memory stream, and the stages create it again.
	Storage string
	// Missing says what of the edge does not exist (not provisioned, or
	// a memory stream lost).
	Missing string
}

// Status reads the state of every edge of t. It changes nothing: an edge
// that was never provisioned is reported with Missing set.
func (b *Bus) Status(ctx context.Context, t Topology) ([]EdgeStatus, error) {
	t, err := t.checked()
	if err != nil {
		return nil, err
	}
	out := make([]EdgeStatus, 0, len(t.Edges))
	for _, e := range t.Edges {
		st := EdgeStatus{Topic: e.Topic, Consumer: e.Consumer.Name, Storage: storageName(e.storage())}
		s, err := b.js.Stream(ctx, e.Topic)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			st.Missing = "stream"
			out = append(out, st)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bus: status of stream %s: %w", e.Topic, err)
		}
		si := s.CachedInfo()
		st.Messages, st.Bytes, st.MaxMsgs = si.State.Msgs, si.State.Bytes, si.Config.MaxMsgs
		st.Storage = storageName(si.Config.Storage)
		c, err := b.js.Consumer(ctx, e.Topic, e.Consumer.Name)
		if errors.Is(err, jetstream.ErrNotPullConsumer) {
			st.Missing = "pull consumer" // a push consumer of an older supflow is in its place
			out = append(out, st)
			continue
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			st.Missing = "consumer"
			out = append(out, st)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bus: status of consumer %s on %s: %w", e.Consumer.Name, e.Topic, err)
		}
		ci := c.CachedInfo()
		st.Undelivered, st.Unacked, st.Redelivered = ci.NumPending, ci.NumAckPending, ci.NumRedelivered
		st.MaxAckPending, st.Waiting, st.AckWait = ci.Config.MaxAckPending, ci.NumWaiting, ci.Config.AckWait
		out = append(out, st)
	}
	return out, nil
}
