package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// sinkRun is one running Sink route. Messages are taken off the
// subscription as they arrive and queued for a dispatcher goroutine that
// calls the route's function one at a time; a keeper sends InProgress for
// every message received and not yet settled, queued or held by the
// function alike. So a consumer that holds a batch for longer than AckWait
// (a trainer step) needs no long AckWait, and a delivery or ack lost with a
// connection (a NATS restart) comes back after one short AckWait.
type sinkRun struct {
	sub  *nats.Subscription
	wake chan struct{} // cap 1: the queue grew or stopping began
	done chan struct{} // the dispatcher returned

	mu       sync.Mutex
	stopping bool
	queue    []queued
	held     []*ackable // received and possibly unsettled, oldest first
}

// queued is a message waiting for the route's function.
type queued struct {
	a   *ackable
	msg *message.Message
}

// startSink subscribes rt to its consumer on the bus connection. Messages
// arriving after stop began are nacked at once for prompt redelivery.
func (r *Router) startSink(ctx context.Context, rt Route, cons consumerInfo) (*sinkRun, error) {
	js, err := r.bus.nc.JetStream()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRoute, rt.name, err)
	}
	delay := backoff{r.cfg.NakDelay, r.cfg.NakDelayMax}
	s := &sinkRun{wake: make(chan struct{}, 1), done: make(chan struct{})}
	receive := func(m *nats.Msg) {
		msg, _ := unmarshaler{}.Unmarshal(m)
		n := deliveries(msg)
		// The message context bounds a dead-letter publish, which may
		// happen after the route's function returned.
		msg.SetContext(ctx)
		a := &ackable{msg: m, delivered: n, nakDelay: delay.WaitTime(n)}
		a.reject = func(reason error) (bool, error) {
			reason = fmt.Errorf("bus: %s: %w: %w", rt.name, errRejected, reason)
			err := r.deadLetter(msg, rt, n, reason)
			return err != nil && r.mustTerminate(msg, rt, n, cons.MaxDeliver, reason, err), err
		}
		a.rejectPart = func(i int, payload []byte, reason error) error {
			return r.deadLetterSample(msg, rt, n, i, payload, fmt.Errorf("bus: %s: %w: %w", rt.name, errRejected, reason))
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			_ = a.nak()
			return
		}
		s.queue = append(s.queue, queued{a, msg})
		s.held = append(s.held, a)
		s.mu.Unlock()
		s.signal()
	}
	dispatch := func(q queued) {
		a, msg := q.a, q.msg
		start := time.Now()
		r.metrics.in.WithLabelValues(rt.name).Inc()
		err := rt.sink(ctx, a.msg.Data, a)
		outcome := "ack"
		if err != nil && !a.isSettled() {
			switch f, _ := r.settle(msg, rt, cons.MaxDeliver, err); f {
			case fateAck:
				err = a.ack()
			case fateTerm:
				err = a.term()
			default:
				err = a.nak()
				outcome = "nak"
			}
			if err != nil {
				r.cfg.Logger.Error("cannot settle message", "handler_name", rt.name, "message_uuid", msg.UUID, "error", err)
			}
		}
		r.metrics.seconds.WithLabelValues(rt.name, outcome).Observe(time.Since(start).Seconds())
	}
	sub, err := js.QueueSubscribe(rt.in, rt.name, receive, nats.Bind(rt.in, rt.name), nats.ManualAck())
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
	go s.dispatch(dispatch)
	go s.keep(cons.AckWait/3, r.cfg.Logger.Warn)
	return s, nil
}

func (s *sinkRun) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch hands queued messages to fn in arrival order until stopping
// began; what is still queued then is nacked.
func (s *sinkRun) dispatch(fn func(queued)) {
	defer close(s.done)
	for {
		s.mu.Lock()
		if s.stopping {
			left := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, q := range left {
				_ = q.a.nak()
			}
			return
		}
		if len(s.queue) == 0 {
			s.mu.Unlock()
			<-s.wake
			continue
		}
		q := s.queue[0]
		s.queue[0] = queued{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		fn(q)
	}
}

// keep restarts the AckWait clock of every unsettled message every interval
// until the dispatcher returned, forgetting settled ones as it goes.
func (s *sinkRun) keep(interval time.Duration, warn func(string, ...any)) {
	t := time.NewTicker(max(interval, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		live := s.held[:0]
		for _, a := range s.held {
			if !a.isSettled() {
				live = append(live, a)
			}
		}
		clear(s.held[len(live):])
		s.held = live
		batch := append([]*ackable(nil), live...)
		s.mu.Unlock()
		for _, a := range batch {
			// Settled since the snapshot: nothing to keep.
			if err := a.inProgress(); err != nil && !errors.Is(err, ErrSettled) {
				warn("cannot extend a held message's ack deadline", "error", err)
				break
			}
		}
	}
}

// stopSinks stops every sink: messages not yet handed to the route's
// function are nacked, the call in progress finishes; each waits at most
// timeout.
func stopSinks(sinks []*sinkRun, timeout time.Duration) {
	for _, s := range sinks {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.signal()
		closed := s.sub.StatusChanged(nats.SubscriptionClosed)
		if err := s.sub.Drain(); err != nil {
			_ = s.sub.Unsubscribe()
		} else {
			select {
			case <-closed:
			case <-time.After(timeout):
				_ = s.sub.Unsubscribe()
			}
		}
		select {
		case <-s.done:
		case <-time.After(timeout):
		}
	}
}
