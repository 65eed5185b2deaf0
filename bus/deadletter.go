package bus

import (
	"context"
	"errors"
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
	cons, err := b.js.OrderedConsumer(ctx, messages.TopicDeadLetter, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: read dead letters: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("bus: read dead letters: %w", err)
	}
	out := make(chan DeadLetter)
	stop := context.AfterFunc(ctx, it.Stop)
	go func() {
		defer close(out)
		defer stop()
		for {
			msg, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					b.logger.Error("dead-letter subscription ended", "error", err)
				}
				return
			}
			h := msg.Headers()
			dl := DeadLetter{Payload: msg.Data(), SourceTopic: h.Get(messages.MetaSourceTopic),
				Reason: h.Get(messages.MetaReason), Handler: h.Get(messages.MetaHandler)}
			select {
			case out <- dl:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
