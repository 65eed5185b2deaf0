package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/messages"
)

// DeadLetter is one message that failed permanently, as stored on the
// dead-letter stream: the original payload and why it was given up.
type DeadLetter struct {
	Payload     []byte
	SourceTopic string
	Reason      string
	Handler     string
}

// DeadLetters delivers every dead-lettered message, oldest first, through
// an ordered consumer of its own; the channel closes when ctx ends. The
// trainer reads it to learn which samples of an epoch will never arrive.
func (b *Bus) DeadLetters(ctx context.Context) (<-chan DeadLetter, error) {
	out, err := readStream(ctx, b.js, b.logger, messages.TopicDeadLetter, func(msg jetstream.Msg) (DeadLetter, bool) {
		h := msg.Headers()
		return DeadLetter{Payload: msg.Data(), SourceTopic: h.Get(messages.MetaSourceTopic),
			Reason: h.Get(messages.MetaReason), Handler: h.Get(messages.MetaHandler)}, true
	})
	if err != nil {
		return nil, fmt.Errorf("bus: read dead letters: %w", err)
	}
	return out, nil
}
