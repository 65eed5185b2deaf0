package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/supflow/supflow/messages"
)

// Events publishes and reads control events on the messages.TopicEvents
// stream. The stream keeps events (Limits retention), so every reader sees
// all of them from the start, whenever it subscribes. Safe for concurrent use.
type Events struct {
	js     jetstream.JetStream
	pub    *Publisher
	logger *slog.Logger
}

// Events returns the bus' event API.
func (b *Bus) Events() *Events {
	return &Events{js: b.js, pub: b.Publisher(), logger: b.logger}
}

// Publish encodes ev and waits for the stream's ack.
func (e *Events) Publish(ctx context.Context, ev messages.Event) error {
	b, err := messages.MarshalEvent(ev)
	if err != nil {
		return fmt.Errorf("bus: publish event: %w", err)
	}
	return e.pub.Send(ctx, messages.TopicEvents, b)
}

// Subscribe delivers, in order, every event of runID whose kind is one of
// kinds (all kinds when none), from the first one stored. Each call reads
// through its own ordered consumer. The channel is closed when ctx ends;
// undecodable events are logged and skipped.
func (e *Events) Subscribe(ctx context.Context, runID string, kinds ...messages.EventKind) (<-chan messages.Event, error) {
	want := func(k messages.EventKind) bool {
		if len(kinds) == 0 {
			return true
		}
		for _, w := range kinds {
			if w == k {
				return true
			}
		}
		return false
	}
	out, err := readStream(ctx, e.js, e.logger, messages.TopicEvents, func(msg jetstream.Msg) (messages.Event, bool) {
		ev, err := messages.UnmarshalEvent(msg.Data())
		if err != nil {
			e.logger.Warn("skipping undecodable event", "error", err)
			return ev, false
		}
		return ev, ev.RunID == runID && want(ev.Kind)
	})
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe to events: %w", err)
	}
	return out, nil
}

// readStream delivers the values that conv accepts from every message of
// stream, oldest first, through an ordered consumer of its own; the channel
// closes when ctx ends.
func readStream[T any](ctx context.Context, js jetstream.JetStream, logger *slog.Logger, stream string, conv func(jetstream.Msg) (T, bool)) (<-chan T, error) {
	cons, err := orderedConsumer(ctx, js, stream)
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, err
	}
	out := make(chan T)
	stop := context.AfterFunc(ctx, it.Stop)
	go func() {
		defer close(out)
		defer stop()
		// The server keeps a stopped ordered consumer for its inactive
		// threshold (5 min): a feeder waiting once per epoch would pile up
		// one per epoch (the soak test saw hundreds). Delete it now.
		defer func() {
			it.Stop()
			if info := cons.CachedInfo(); info != nil {
				dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = js.DeleteConsumer(dctx, stream, info.Name) // best effort: the threshold still applies
			}
		}()
		for {
			msg, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					logger.Error("stream subscription ended", "stream", stream, "error", err)
				}
				return
			}
			v, ok := conv(msg)
			if !ok {
				continue
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// orderedConsumer creates an ordered consumer of every message of stream,
// waiting out a connection that is between servers (a NATS restart) the way
// the publisher does, until ctx ends.
func orderedConsumer(ctx context.Context, js jetstream.JetStream, stream string) (jetstream.Consumer, error) {
	for wait := fullBackoffMin; ; wait = min(2*wait, fullBackoffMax) {
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		if err == nil || !transient(ctx, err) {
			return cons, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (after %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Wait returns the first event of runID and kind for which match returns
// true (any, when match is nil), waiting until it is published or ctx ends.
func (e *Events) Wait(ctx context.Context, runID string, kind messages.EventKind, match func(messages.Event) bool) (messages.Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, err := e.Subscribe(ctx, runID, kind)
	if err != nil {
		return messages.Event{}, err
	}
	for ev := range evs {
		if match == nil || match(ev) {
			return ev, nil
		}
	}
	if err := context.Cause(ctx); err != nil {
		return messages.Event{}, fmt.Errorf("bus: wait for %v of run %s: %w", kind, runID, err)
	}
	return messages.Event{}, fmt.Errorf("bus: wait for %v of run %s: event subscription ended", kind, runID)
}
