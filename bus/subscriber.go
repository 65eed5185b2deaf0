package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
)

// metaDelivered carries the JetStream delivery count into watermill
// metadata. Keys starting with '_' are internal: never republished.
const metaDelivered = "_supflow_delivered"

// metaReply carries the JetStream reply subject, where a handler may send
// an acknowledgement of its own (+TERM).
const metaReply = "_supflow_reply"

// unmarshaler turns a JetStream message into a watermill message. Unlike
// watermill-nats' own it never fails (a failure there leaves the message
// unacknowledged until AckWait, forever), and it records the delivery count.
type unmarshaler struct{}

func (unmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	md := message.Metadata{}
	for k, vs := range m.Header {
		if k == wmnats.WatermillUUIDHdr || strings.HasPrefix(k, "Nats-") || len(vs) == 0 {
			continue
		}
		md[k] = vs[0]
	}
	id := m.Header.Get(nats.MsgIdHdr)
	if id == "" {
		id = m.Header.Get(wmnats.WatermillUUIDHdr)
	}
	if m.Reply != "" {
		md[metaReply] = m.Reply
	}
	if meta, err := m.Metadata(); err == nil {
		md[metaDelivered] = strconv.FormatUint(meta.NumDelivered, 10)
		if id == "" {
			id = fmt.Sprintf("%s-%d", meta.Stream, meta.Sequence.Stream)
		}
	}
	if id == "" {
		id = watermill.NewUUID()
	}
	msg := message.NewMessage(id, m.Data)
	msg.Metadata = md
	return msg, nil
}

func deliveries(msg *message.Message) uint64 {
	n, _ := strconv.ParseUint(msg.Metadata.Get(metaDelivered), 10, 64)
	return n
}

// derivedID names the message a handler produces from input id: the same on
// every redelivery, so the output stream's duplicate window drops repeats.
func derivedID(id, salt string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + salt))
	return hex.EncodeToString(sum[:16])
}

// backoff is the redelivery delay after a failed delivery: base doubled per
// earlier delivery, capped.
type backoff struct{ base, max time.Duration }

func (b backoff) WaitTime(delivered uint64) time.Duration {
	d := b.base
	for i := uint64(1); i < delivered && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// drainingSubscriber lets in-flight messages finish on Close. watermill's
// router cancels the subscription context and closes subscribers as soon as
// it starts closing, and watermill-nats then drops the ack of every message
// still in flight (and cancels its context). This wrapper subscribes with
// work, a context that outlives the drain, and on Close stops taking new
// messages (naking them for prompt redelivery elsewhere), waits until every
// forwarded message is acked or nacked (up to timeout), then closes the
// inner subscriber.
type drainingSubscriber struct {
	inner   message.Subscriber
	work    context.Context
	timeout time.Duration

	mu       sync.Mutex
	closing  bool
	closed   chan struct{} // closed when Close begins
	inflight sync.WaitGroup
	once     sync.Once
}

func newDrainingSubscriber(inner message.Subscriber, work context.Context, timeout time.Duration) *drainingSubscriber {
	return &drainingSubscriber{inner: inner, work: work, timeout: timeout, closed: make(chan struct{})}
}

// Subscribe ignores ctx, which the router cancels before the drain; the
// subscription ends with Close.
func (s *drainingSubscriber) Subscribe(_ context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.inner.Subscribe(s.work, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for msg := range in {
			if !s.track(msg) {
				msg.Nack()
				continue
			}
			// The router stops reading when it starts closing: a message
			// tracked but not yet handed over would hold Close for its
			// whole timeout (seen as "router close timeout" on a SIGTERM
			// right after start), so it is nacked for redelivery instead.
			select {
			case out <- msg:
			case <-s.closed:
				msg.Nack()
			}
		}
	}()
	return out, nil
}

// track counts msg in flight until it is settled, unless closing began.
func (s *drainingSubscriber) track(msg *message.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		select {
		case <-msg.Acked():
		case <-msg.Nacked():
		}
	}()
	return true
}

func (s *drainingSubscriber) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closing = true
		close(s.closed)
		s.mu.Unlock()
		done := make(chan struct{})
		go func() { s.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(s.timeout):
		}
		err = s.inner.Close()
	})
	return err
}
