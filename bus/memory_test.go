package bus

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// inMemory is a test edge whose stream is in memory storage.
func inMemory(topic, consumer string) WorkQueue {
	e := edge(topic, consumer)
	e.Memory = true
	return e
}

// TestMemoryEdgesComeBackAfterARestart restarts the server under a route
// between two memory edges: the restart loses both streams; the publisher
// and the route's pullers create them again, messages flow as before, and
// Generation changes.
func TestMemoryEdgesComeBackAfterARestart(t *testing.T) {
	b, col, srv, restart := boundRoute(t, inMemory("mem_in", "upper"), inMemory("mem_out", "check"))
	before, err := b.Generation(t.Context())
	if err != nil || !strings.Contains(before, "mem_in@") || !strings.Contains(before, "mem_out@") {
		t.Fatalf("generation %q, %v: want both memory edges", before, err)
	}
	srv.Close()
	restart()
	sendAll(t, b, "mem_in", "after")
	if got := col.wait(t, 1); len(got) != 2 || got[1] != "after" {
		t.Fatalf("collected %q, want before and after", got)
	}
	after, err := b.Generation(t.Context())
	if err != nil || after == before {
		t.Errorf("generation %q after the restart (%v), %q before: want another", after, err, before)
	}
	s, err := b.js.Stream(t.Context(), "mem_out")
	if err != nil || s.CachedInfo().Config.Storage != jetstream.MemoryStorage {
		t.Errorf("stream mem_out after the restart: %v", err)
	}
}

// TestGenerationWithoutMemoryEdges: file edges have no generation, and
// asking costs no request.
func TestGenerationWithoutMemoryEdges(t *testing.T) {
	srv := startServer(t, EmbeddedConfig{})
	b := connect(t, srv.URL())
	provision(t, b, edge("file_in", "c"))
	srv.Close()
	if g, err := b.Generation(t.Context()); g != "" || err != nil {
		t.Errorf("generation %q, %v: want empty", g, err)
	}
}

// TestProvisionMovesAnEmptyStream: changing bus.storage moves an empty
// edge stream to the other storage; one holding messages is refused with
// what to do, and keeps them.
func TestProvisionMovesAnEmptyStream(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, edge("move_empty", "c"), edge("move_full", "d"))
	sendAll(t, b, "move_full", "kept")
	err := b.Provision(context.Background(), Topology{Edges: []WorkQueue{inMemory("move_empty", "c")}})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := b.js.Stream(t.Context(), "move_empty"); err != nil || s.CachedInfo().Config.Storage != jetstream.MemoryStorage {
		t.Errorf("empty stream not moved to memory: %v", err)
	}
	if _, err := b.js.Consumer(t.Context(), "move_empty", "c"); err != nil {
		t.Errorf("consumer of the moved stream: %v", err)
	}
	err = b.Provision(context.Background(), Topology{Edges: []WorkQueue{inMemory("move_full", "d")}})
	if err == nil || !strings.Contains(err.Error(), "has file storage and holds 1 messages, bus.storage asks for memory") ||
		!strings.Contains(err.Error(), "nats stream rm move_full") {
		t.Errorf("moving a stream with a message: %v", err)
	}
	if n := streamMsgs(t, b, "move_full"); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

// TestPullerRecreatesALostMemoryStream: a worker reading a memory edge
// that a restart lost creates the stream and its consumer again by
// itself, before anything is published to it.
func TestPullerRecreatesALostMemoryStream(t *testing.T) {
	srv, restart := restartableServer(t)
	b := connect(t, srv.URL())
	provision(t, b, inMemory("mem_only", "check"))
	col := newCollector()
	runRouter(t, b, quick, col.route("check", "mem_only"))
	sendAll(t, b, "mem_only", "before")
	col.wait(t, 1)
	srv.Close()
	restart()
	for start := time.Now(); ; {
		_, err := b.js.Consumer(t.Context(), "mem_only", "check")
		if err == nil {
			break
		}
		if time.Since(start) > stallLimit {
			t.Fatalf("the worker did not create the lost stream and consumer again: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := b.js.Publish(t.Context(), "mem_only", []byte("after")); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 1)
}

// TestStatusOfMemoryEdges: Status says which edges are memory streams,
// the missing one included.
func TestStatusOfMemoryEdges(t *testing.T) {
	b := connect(t, startServer(t, EmbeddedConfig{}).URL())
	provision(t, b, inMemory("mem_there", "c"), edge("file_there", "d"))
	sts, err := b.Status(t.Context(), Topology{Edges: []WorkQueue{inMemory("mem_there", "c"), edge("file_there", "d"), inMemory("mem_gone", "e")}})
	if err != nil {
		t.Fatal(err)
	}
	if sts[0].Storage != StorageMemory || sts[0].Missing != "" || sts[1].Storage != StorageFile ||
		sts[2].Storage != StorageMemory || sts[2].Missing != "stream" {
		t.Errorf("status %+v", sts)
	}
}
