package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/supflow/supflow/messages"
)

var (
	// ErrTooLarge: the message exceeds the server's max_payload. It also
	// wraps messages.ErrPermanent, since no retry can fix it.
	ErrTooLarge = errors.New("bus: message larger than the server's max_payload")
	// ErrNoStream: nothing stores the topic; provision the topology first.
	ErrNoStream = errors.New("bus: no stream for topic")
	// ErrClosed: the publisher was closed while waiting for room.
	ErrClosed = errors.New("bus: publisher closed")
)

// errCodeStreamStoreFailed is JetStream's err_code (HTTP-like code 503) for
// a publish rejected by a full DiscardNew stream.
const errCodeStreamStoreFailed jetstream.ErrorCode = 10077

// Back-pressure backoff between publish attempts on a full stream.
const (
	fullBackoffMin = 2 * time.Millisecond
	fullBackoffMax = 250 * time.Millisecond
)

// Publisher publishes to JetStream and waits for the stream's ack. While the
// target stream is full it retries with backoff (2-250 ms) until the message
// fits, its context ends or the publisher is closed: a full stream slows the
// producer down instead of losing messages. A publish that times out while
// the connection is between servers (a NATS restart outlasting JetStream's
// 5 s request timeout) is retried the same way until the connection is back
// or given up; the message id lets the stream drop a copy whose first ack
// was lost. A memory edge's stream that a NATS restart lost is created
// again, and the publish goes on. It is safe for concurrent use; Close stops
// waiting publishes but leaves the bus connection open.
type Publisher struct {
	bus        *Bus // its JetStream, and memory edges to create again
	maxPayload int64
	closing    chan struct{}
	once       sync.Once
}

// Publisher returns a new publisher on the bus connection.
func (b *Bus) Publisher() *Publisher {
	return &Publisher{bus: b, maxPayload: b.MaxPayload(), closing: make(chan struct{})}
}

// Send publishes payload to topic with a fresh message id.
func (p *Publisher) Send(ctx context.Context, topic string, payload []byte) error {
	return p.publish(ctx, topic, message.NewMessage(watermill.NewUUID(), payload))
}

// Publish implements watermill's message.Publisher; each message's Context
// bounds its wait.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := p.publish(m.Context(), topic, m); err != nil {
			return err
		}
	}
	return nil
}

// Close makes waiting and later publishes fail with ErrClosed. Idempotent.
func (p *Publisher) Close() error {
	p.once.Do(func() { close(p.closing) })
	return nil
}

func (p *Publisher) publish(ctx context.Context, topic string, m *message.Message) error {
	nm := &nats.Msg{Subject: topic, Data: m.Payload, Header: wireHeader(m.UUID, m.Metadata)}
	if size := int64(len(nm.Data) + headerSize(nm.Header)); size > p.maxPayload {
		return messages.Permanent(fmt.Errorf("%w: %d bytes (headers included) on %s, max_payload is %d",
			ErrTooLarge, size, topic, p.maxPayload))
	}
	wait := fullBackoffMin
	for {
		select {
		case <-p.closing:
			return fmt.Errorf("%w: publish to %s", ErrClosed, topic)
		default:
		}
		_, err := p.bus.js.PublishMsg(ctx, nm)
		if err == nil {
			return nil
		}
		if !isStreamFull(err) && !transient(ctx, err) && !p.recreated(ctx, topic, err) {
			return classifyPublishError(topic, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("bus: publish to %s: gave up waiting (%v): %w", topic, err, ctx.Err())
		case <-p.closing:
			t.Stop()
			return fmt.Errorf("%w: publish to %s while waiting (%v)", ErrClosed, topic, err)
		case <-t.C:
		}
		wait = min(2*wait, fullBackoffMax)
	}
}

// recreated reports whether err says that topic has no stream and topic
// is a memory edge, which it then creates again (Bus.recreate).
func (p *Publisher) recreated(ctx context.Context, topic string, err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) && p.bus.recreate(ctx, topic)
}

// transient reports a publish failure that reconnecting cures: the request
// timed out (JetStream's own timeout when ctx has no deadline) or the
// connection is reconnecting. A closed connection is not transient.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionReconnecting)
}

func isStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamStoreFailed
}

func classifyPublishError(topic string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("%w %s: provision the topology first: %w", ErrNoStream, topic, err)
	case errors.Is(err, nats.ErrMaxPayload):
		return messages.Permanent(fmt.Errorf("%w: on %s: %w", ErrTooLarge, topic, err))
	}
	return fmt.Errorf("bus: publish to %s: %w", topic, err)
}

// wireHeader is the NATS header a message with id and md is published
// with. The message id travels once, as Nats-Msg-Id (the subscriber reads
// it back as the watermill UUID): the stream drops a second publish with
// this id within its Duplicates window, so a retried or redelivered handler
// run whose output id is derived from its input id does not publish twice.
// One header, not two, keeps small views near their raw size on the wire.
// An empty id (Route.WithoutOutputID) sends none.
func wireHeader(id string, md message.Metadata) nats.Header {
	h := make(nats.Header, len(md)+1)
	if id != "" {
		h.Set(nats.MsgIdHdr, id)
	}
	for k, v := range md {
		h.Set(k, v)
	}
	return h
}

// headerSize is the encoded size of h as NATS sends it, which counts toward
// max_payload.
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n") + len("\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}
