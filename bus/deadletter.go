package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/messages"
)

// DeadLetters delivers every dead-lettered message, oldest first, through
// an ordered consumer of its own; the channel closes when ctx ends. The
// trainer reads it to learn which samples of an epoch will never arrive.
func (b *Bus) DeadLetters(ctx context.Context) (<-chan messages.DeadLetter, error) {
	out, err := readStream(ctx, b.js, b.logger, messages.TopicDeadLetter, func(msg jetstream.Msg) (messages.DeadLetter, bool) {
		h := msg.Headers()
		dl := messages.DeadLetter{Payload: msg.Data(), SourceTopic: h.Get(messages.MetaSourceTopic),
			Reason: h.Get(messages.MetaReason), Handler: h.Get(messages.MetaHandler)}
		if n, err := strconv.Atoi(h.Get(messages.MetaPayloadSize)); err == nil && n > len(dl.Payload) {
			dl.Size = n
		}
		return dl, true
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

// maxReasonLen bounds the reason header of a dead-lettered message.
const maxReasonLen = 1024

// minDeadLetterPayload is how much of a payload a dead letter keeps at the
// least (all of a shorter one): messages.MaxSampleOf, so that a truncated
// dead letter still names its samples, a batch's too
// (messages.DeadLetter.Samples). To keep it, the copied metadata of the
// original and then the reason give way first.
const minDeadLetterPayload = messages.MaxSampleOf

// errDeadLetterSize: not even the dead letter's own headers fit max_payload.
var errDeadLetterSize = errors.New("bus: dead letter does not fit max_payload")

// deadLetterOf builds the dead letter of msg, consumed from topic in and
// given up by handler at delivery n for reason: the original payload and
// metadata (internal keys excepted) with the supflow_reason,
// supflow_source_topic, supflow_handler and supflow_deliveries headers,
// under an id derived from msg's. It always fits maxPayload, headers
// included: when the whole does not, the payload is cut to what fits
// (keeping its start, at least minDeadLetterPayload bytes) and
// supflow_payload_size records its original length; to make room for that
// much payload the original's metadata is dropped, then the reason
// shortened. Only a maxPayload too small for the headers alone gives an
// error (wrapping messages.ErrPermanent).
func deadLetterOf(msg *message.Message, in, handler string, n uint64, reason error, maxPayload int64) (*message.Message, error) {
	id := derivedID(msg.UUID, handler+"/dead_letter")
	text := headerText(reason.Error(), maxReasonLen)
	ours := func(md message.Metadata) message.Metadata {
		md.Set(messages.MetaReason, text)
		md.Set(messages.MetaSourceTopic, in)
		md.Set(messages.MetaHandler, handler)
		md.Set(messages.MetaDeliveries, strconv.FormatUint(n, 10))
		return md
	}
	md := message.Metadata{}
	for k, v := range msg.Metadata {
		if len(k) > 0 && k[0] != '_' {
			md.Set(k, v)
		}
	}
	md = ours(md)
	payload := msg.Payload
	room := func() int64 { return maxPayload - int64(headerSize(wireHeader(id, md))) }
	if int64(len(payload)) > room() {
		keep := int64(min(len(payload), minDeadLetterPayload))
		md.Set(messages.MetaPayloadSize, strconv.Itoa(len(payload)))
		if room() < keep { // drop the original's metadata
			size := md.Get(messages.MetaPayloadSize)
			md = ours(message.Metadata{})
			md.Set(messages.MetaPayloadSize, size)
		}
		if short := keep - room(); short > 0 { // shorten the reason
			text = headerText(text, max(0, len(text)-int(short)))
			md.Set(messages.MetaReason, text)
		}
		if room() < 0 {
			return nil, messages.Permanent(fmt.Errorf("%w: its headers alone take %d bytes, max_payload is %d",
				errDeadLetterSize, maxPayload-room(), maxPayload))
		}
		// Dropping or shortening may have made room for it all.
		delete(md, messages.MetaPayloadSize)
		if int64(len(payload)) > room() {
			md.Set(messages.MetaPayloadSize, strconv.Itoa(len(payload)))
			payload = payload[:max(0, room())]
		}
	}
	dl := message.NewMessage(id, payload)
	dl.Metadata = md
	return dl, nil
}

// headerText makes s a header value of at most limit bytes: line breaks
// (which would end the header) become spaces, and a cut never splits a
// UTF-8 sequence.
func headerText(s string, limit int) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) <= limit {
		return s
	}
	s = s[:limit]
	for len(s) > 0 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
