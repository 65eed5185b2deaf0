package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/messages"
)

// DeadLetters delivers every dead-lettered message, oldest first, through
// an ordered consumer of its own; the channel closes when ctx ends. The
// trainer reads it to learn which samples of an epoch will never arrive.
func (b *Bus) DeadLetters(ctx context.Context) (<-chan messages.DeadLetter, error) {
	out, err := readStream(ctx, b.js, b.logger, messages.TopicDeadLetter, func(msg jetstream.Msg) (messages.DeadLetter, bool) {
		h := msg.Headers()
		return messages.DeadLetter{Payload: msg.Data(), SourceTopic: h.Get(messages.MetaSourceTopic),
			Reason: h.Get(messages.MetaReason), Handler: h.Get(messages.MetaHandler)}, true
	})
	if err != nil {
		return nil, fmt.Errorf("bus: read dead letters: %w", err)
	}
	return out, nil
}

// Markers the router wraps into a dead-letter reason, so that reasonClass
// can tell where the failure happened.
var (
	errDecodeInput  = errors.New("decode input")
	errEncodeOutput = errors.New("encode output")
	errRejected     = errors.New("rejected")
	errGaveUp       = errors.New("gave up")
)

// Reason classes: the values of the reason label of
// supflow_bus_messages_dead_lettered_total. The set is fixed, so the number
// of series stays bounded by the number of handlers; the full reason text
// travels in the supflow_reason header.
const (
	reasonSchemaVersion = "schema_version" // input in a format version this build does not read
	reasonWrongType     = "wrong_type"     // input of another message type than the route's
	reasonTruncated     = "truncated"      // input cut short, empty included
	reasonTooLarge      = "too_large"      // input declaring a length or size over the codec's bounds
	reasonMalformed     = "malformed"      // any other undecodable input: not a supflow message, trailing bytes, invalid field
	reasonOutput        = "output"         // the handler's output failed to encode or is over max_payload
	reasonPermanent     = "permanent"      // the handler failed with messages.ErrPermanent (corrupt image, missing object, ...)
	reasonRejected      = "rejected"       // a Sink gave the delivery up with Delivery.DeadLetter
	reasonMaxDeliver    = "max_deliver"    // transient failures until the consumer's MaxDeliver
)

// reasonClass maps a dead-letter reason to its class.
func reasonClass(reason error) string {
	switch {
	case errors.Is(reason, errRejected):
		return reasonRejected
	case errors.Is(reason, errDecodeInput):
		switch {
		case errors.Is(reason, messages.ErrVersion):
			return reasonSchemaVersion
		case errors.Is(reason, messages.ErrType):
			return reasonWrongType
		case errors.Is(reason, messages.ErrTruncated):
			return reasonTruncated
		case errors.Is(reason, messages.ErrTooLarge):
			return reasonTooLarge
		}
		return reasonMalformed
	case errors.Is(reason, errEncodeOutput), errors.Is(reason, ErrTooLarge):
		return reasonOutput
	case errors.Is(reason, errGaveUp):
		return reasonMaxDeliver
	}
	return reasonPermanent
}
