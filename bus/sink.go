package bus

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// sinkRun is one running Sink route.
type sinkRun struct {
	sub      *nats.Subscription
	stopping atomic.Bool
}

// startSink subscribes rt to its consumer on the bus connection. Messages
// arriving after stop began are nacked at once for prompt redelivery.
func (r *Router) startSink(ctx context.Context, rt Route, cons consumerInfo) (*sinkRun, error) {
	js, err := r.bus.nc.JetStream()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRoute, rt.name, err)
	}
	delay := backoff{r.cfg.NakDelay, r.cfg.NakDelayMax}
	s := &sinkRun{}
	cb := func(m *nats.Msg) {
		if s.stopping.Load() {
			_ = m.Nak()
			return
		}
		msg, _ := unmarshaler{}.Unmarshal(m)
		n := deliveries(msg)
		// The message context bounds a dead-letter publish, which may
		// happen after this callback returned.
		msg.SetContext(ctx)
		a := &ackable{msg: m, delivered: n, nakDelay: delay.WaitTime(n),
			reject: func(reason error) error {
				return r.deadLetter(msg, rt, n, fmt.Errorf("bus: %s: %w: %w", rt.name, errRejected, reason))
			}}
		start := time.Now()
		r.metrics.in.WithLabelValues(rt.name).Inc()
		err := rt.sink(ctx, m.Data, a)
		outcome := "ack"
		if err != nil && !a.settled.Load() {
			if r.settle(msg, rt, cons.MaxDeliver, err) == nil {
				err = a.ack()
			} else {
				err = a.nak()
				outcome = "nak"
			}
			if err != nil {
				r.cfg.Logger.Error("cannot settle message", "handler_name", rt.name, "message_uuid", msg.UUID, "error", err)
			}
		}
		r.metrics.seconds.WithLabelValues(rt.name, outcome).Observe(time.Since(start).Seconds())
	}
	sub, err := js.QueueSubscribe(rt.in, rt.name, cb, nats.Bind(rt.in, rt.name), nats.ManualAck())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: subscribe: %w", ErrRoute, rt.name, err)
	}
	// MaxAckPending bounds what the server sends; the client must not drop
	// any of it as a slow consumer while fn holds a batch.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("%w: %s: %w", ErrRoute, rt.name, err)
	}
	s.sub = sub
	return s, nil
}

// stopSinks drains every sink: buffered messages are nacked, the call in
// progress finishes; each waits at most timeout.
func stopSinks(sinks []*sinkRun, timeout time.Duration) {
	for _, s := range sinks {
		s.stopping.Store(true)
		closed := s.sub.StatusChanged(nats.SubscriptionClosed)
		if err := s.sub.Drain(); err != nil {
			_ = s.sub.Unsubscribe()
			continue
		}
		select {
		case <-closed:
		case <-time.After(timeout):
			_ = s.sub.Unsubscribe()
		}
	}
}
