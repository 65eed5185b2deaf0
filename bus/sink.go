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

// routeSub is one subscription to a route's consumer, a Sink's or a Handle
// route's. Messages are taken off the subscription as they arrive and
// queued for the route's workers, which take them in arrival order; a
// keeper sends InProgress for every message received and not yet settled,
// queued or held by a worker alike. The server pushes up to MaxAckPending
// messages at once, more than the workers may get through within AckWait:
// without the keeper, a message waiting its turn came back as a copy behind
// the others, and under load the copies outnumbered the work until nothing
// progressed (the HA compose's decode stall). So a route needs no AckWait
// longer than its queue or a call (a trainer step), and a delivery or ack
// lost with a connection (a NATS restart) comes back after one short
// AckWait; a stopped or killed process stops its keeper with it.
type routeSub struct {
	sub  *nats.Subscription
	stop chan struct{} // closed when stopping begins
	done chan struct{} // every worker returned

	mu       sync.Mutex
	cond     *sync.Cond // on mu: the queue grew or stopping began
	stopping bool
	queue    []queued
	held     []*ackable // received and possibly unsettled, oldest first
}

// queued is a message waiting for the route's function.
type queued struct {
	a   *ackable
	msg *message.Message
}

// startSink subscribes rt, a Sink, to its consumer on the bus connection,
// with one worker calling the route's function.
func (r *Router) startSink(ctx context.Context, rt Route, cons consumerInfo) (*routeSub, error) {
	return r.subscribe(ctx, r.bus.nc, rt, cons, 1, func(q queued, _ <-chan struct{}) {
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
	})
}

// subscribe subscribes rt to its consumer on nc; workers goroutines call
// work with each message, in arrival order, and stop (a closed channel)
// that is closed when stopping begins. Every message carries ctx as its
// context. Messages arriving after stop began are nacked at once for
// prompt redelivery.
func (r *Router) subscribe(ctx context.Context, nc *nats.Conn, rt Route, cons consumerInfo, workers int,
	work func(q queued, stop <-chan struct{}),
) (*routeSub, error) {
	js, err := nc.JetStream()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRoute, rt.name, err)
	}
	delay := backoff{r.cfg.NakDelay, r.cfg.NakDelayMax}
	s := &routeSub{stop: make(chan struct{}), done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
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
		s.cond.Signal()
	}
	sub, err := js.QueueSubscribe(rt.in, rt.name, receive, nats.Bind(rt.in, rt.name), nats.ManualAck())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: subscribe: %w", ErrRoute, rt.name, err)
	}
	// MaxAckPending bounds what the server sends; the client must not drop
	// any of it as a slow consumer while the workers are busy.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("%w: %s: %w", ErrRoute, rt.name, err)
	}
	s.sub = sub
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.dispatch(work)
		}()
	}
	go func() { wg.Wait(); close(s.done) }()
	go s.keep(cons.AckWait/3, r.cfg.Logger.Warn)
	return s, nil
}

// dispatch hands queued messages to work in arrival order until stopping
// began; what is still queued then is nacked.
func (s *routeSub) dispatch(work func(queued, <-chan struct{})) {
	for {
		s.mu.Lock()
		for !s.stopping && len(s.queue) == 0 {
			s.cond.Wait()
		}
		if s.stopping {
			left := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, q := range left {
				_ = q.a.nak()
			}
			return
		}
		q := s.queue[0]
		s.queue[0] = queued{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		work(q, s.stop)
	}
}

// keep restarts the AckWait clock of every unsettled message every interval
// until the dispatcher returned, forgetting settled ones as it goes.
func (s *routeSub) keep(interval time.Duration, warn func(string, ...any)) {
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

// stopSubs stops every subscription: messages not yet handed to a worker
// are nacked, the calls in progress finish; each waits at most timeout.
func stopSubs(sinks []*routeSub, timeout time.Duration) {
	for _, s := range sinks {
		s.mu.Lock()
		if !s.stopping {
			s.stopping = true
			close(s.stop)
		}
		s.mu.Unlock()
		s.cond.Broadcast()
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
