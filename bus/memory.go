package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// memoryEdge is an edge Provision created in memory storage, as the bus
// creates it again.
type memoryEdge struct {
	edge     WorkQueue
	replicas int
}

// remember records whether an edge of a provisioned topology is a memory
// edge, as the last Provision made it.
func (b *Bus) remember(e WorkQueue, replicas int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !e.Memory {
		delete(b.memory, e.Topic)
		return
	}
	if b.memory == nil {
		b.memory = map[string]memoryEdge{}
	}
	b.memory[e.Topic] = memoryEdge{edge: e, replicas: replicas}
}

func (b *Bus) memoryEdge(topic string) (memoryEdge, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.memory[topic]
	return m, ok
}

// recreate provisions topic's edge again if it is a memory edge of a
// topology this bus provisioned, and reports whether it is one; a failure
// is logged, and the caller asks again later. A NATS restart loses memory
// streams with their consumers; whatever finds one missing (a publisher, a
// puller, Generation) calls it.
func (b *Bus) recreate(ctx context.Context, topic string) bool {
	m, ok := b.memoryEdge(topic)
	if !ok {
		return false
	}
	if err := b.edge(ctx, m.edge, m.replicas); err != nil {
		b.logger.Warn("memory stream missing, and creating it again failed", "stream", topic, "error", err)
	} else {
		b.logger.Warn("memory stream was missing (a NATS restart loses them): created it again", "stream", topic)
	}
	return true
}

// generationWait bounds Generation's requests.
const generationWait = 5 * time.Second

// Generation names the generation of the memory edges of the topologies
// this bus provisioned: each one's creation time, so the value changes
// whenever one of them was created again, having lost what it held. A
// memory edge found missing is created again first. Without memory edges
// it is "" and asks the server nothing. The feeder compares it before and
// after an epoch's feed (feeder.Config.Generation).
func (b *Bus) Generation(ctx context.Context) (string, error) {
	b.mu.Lock()
	topics := make([]string, 0, len(b.memory))
	for t := range b.memory {
		topics = append(topics, t)
	}
	b.mu.Unlock()
	slices.Sort(topics)
	ctx, cancel := context.WithTimeout(ctx, generationWait)
	defer cancel()
	var g strings.Builder
	for _, t := range topics {
		s, err := b.js.Stream(ctx, t)
		if errors.Is(err, jetstream.ErrStreamNotFound) && b.recreate(ctx, t) {
			s, err = b.js.Stream(ctx, t)
		}
		if err != nil {
			return "", fmt.Errorf("bus: generation of memory stream %s: %w", t, err)
		}
		fmt.Fprintf(&g, "%s@%s ", t, s.CachedInfo().Created.UTC().Format(time.RFC3339Nano))
	}
	return g.String(), nil
}
