package bus

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/supflow/supflow/messages"
)

// sinkRun is one running Sink route. Messages are taken off its puller as
// they arrive and queued for a dispatcher goroutine that calls the route's
// function one at a time; the puller keeps every message received and not
// yet settled alive (InProgress), queued or held by the function alike. So
// a consumer that holds a batch for longer than AckWait (a trainer step)
// needs no long AckWait, and a delivery or ack lost with a connection (a
// NATS restart) comes back after one short AckWait. The puller has the
// consumer's MaxAckPending as its slots, one per sample of a message: the
// function decides how much of that it holds.
type sinkRun struct {
	p    *puller
	wake chan struct{} // cap 1: the queue grew or stopping began
	done chan struct{} // the dispatcher returned

	mu       sync.Mutex
	stopping bool
	queue    []queued
}

// queued is a message waiting for the route's function.
type queued struct {
	a   *ackable
	msg *message.Message
}

// startSink pulls rt's consumer on the bus connection. Messages arriving
// after stop began are nacked at once for prompt redelivery.
func (r *Router) startSink(ctx context.Context, rt Route, cons consumerInfo) (*sinkRun, error) {
	c, err := pullConsumer(ctx, r.bus.js, rt)
	if err != nil {
		return nil, err
	}
	s := &sinkRun{wake: make(chan struct{}, 1), done: make(chan struct{}),
		p: newPuller(r.bus.js, c, cmp.Or(max(cons.MaxAckPending, 0), maxMaxAckPending), cons.AckWait, backoff{r.cfg.NakDelay, r.cfg.NakDelayMax}, r.cfg.Logger)}
	s.p.weight = messages.Samples
	s.p.recreate = r.bus.recreate
	receive := func(a *ackable) {
		msg := toMessage(a.msg)
		n := a.delivered
		// The message context bounds a dead-letter publish, which may
		// happen after the route's function returned.
		msg.SetContext(ctx)
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
		s.mu.Unlock()
		s.signal()
	}
	dispatch := func(q queued) {
		a, msg := q.a, q.msg
		start := time.Now()
		r.metrics.in.WithLabelValues(rt.name).Inc()
		err := rt.sink(ctx, a.msg.Data(), a)
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
	s.p.start(receive)
	go s.dispatch(dispatch)
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

// stopSinks stops every sink: messages not yet handed to the route's
// function are nacked, the call in progress finishes; each waits at most
// timeout.
func stopSinks(sinks []*sinkRun, timeout time.Duration) {
	for _, s := range sinks {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.signal()
		s.p.stop()
		<-s.p.done
		select {
		case <-s.done:
		case <-time.After(timeout):
		}
		s.p.close()
	}
}
