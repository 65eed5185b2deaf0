package bus

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// chanSubscriber delivers what the test sends on msgs.
type chanSubscriber struct {
	msgs chan *message.Message
}

func (c *chanSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case m, ok := <-c.msgs:
				if !ok {
					return
				}
				out <- m
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (c *chanSubscriber) Close() error { close(c.msgs); return nil }

// TestDrainNacksAMessageTheRouterNeverTook: a message that arrived as the
// router stopped reading is nacked by Close (for redelivery elsewhere)
// instead of holding Close for its whole timeout, which here is an hour:
// before the fix this test hung.
func TestDrainNacksAMessageTheRouterNeverTook(t *testing.T) {
	inner := &chanSubscriber{msgs: make(chan *message.Message)}
	s := newDrainingSubscriber(inner, t.Context(), time.Hour)
	if _, err := s.Subscribe(t.Context(), "in"); err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("1", []byte("x"))
	inner.msgs <- msg // taken and tracked; nobody reads the output
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	<-msg.Nacked()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
