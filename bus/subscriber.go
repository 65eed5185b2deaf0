package bus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
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

// handleSubscriber is a Handle route's watermill subscriber: a routeSub
// (see there) whose workers hand each message to the watermill router and
// settle it as the router acks or nacks it, so that the route's handler
// holds at most as many messages as the route has workers, and every
// message received is kept alive until it is settled. Messages carry the
// context start gives them, one that outlives the drain: watermill's
// router cancels the subscription context and closes subscribers as soon
// as it starts closing. Close stops taking messages (those not yet handed
// over are nacked for prompt redelivery elsewhere) and waits up to timeout
// for the handled ones to be settled.
type handleSubscriber struct {
	start   func(work func(queued, <-chan struct{})) (*routeSub, error)
	timeout time.Duration
	logger  *slog.Logger
	name    string

	mu  sync.Mutex
	run *routeSub
}

// Subscribe ignores its arguments: start knows the route.
func (s *handleSubscriber) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	run, err := s.start(func(q queued, stop <-chan struct{}) {
		select {
		case out <- q.msg:
		case <-stop:
			// The router stops reading when it starts closing: a message
			// not yet handed over would hold Close for its whole timeout
			// (seen as "router close timeout" on a SIGTERM right after
			// start), so it is nacked for redelivery instead.
			_ = q.a.nak()
			return
		}
		var err error
		select {
		case <-q.msg.Acked():
			err = q.a.ack()
		case <-q.msg.Nacked():
			err = q.a.nak()
		}
		if err != nil {
			s.logger.Error("cannot settle message", "handler_name", s.name, "message_uuid", q.msg.UUID, "error", err)
		}
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.run = run
	s.mu.Unlock()
	go func() { <-run.done; close(out) }()
	return out, nil
}

func (s *handleSubscriber) Close() error {
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	if run != nil {
		stopSubs([]*routeSub{run}, s.timeout)
	}
	return nil
}
