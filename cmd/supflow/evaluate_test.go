package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/stages/evaluate"
)

// TestWaitCheckpointSkipsForgedEventOnTheBus: a forged pretrain-done event
// naming a ".." checkpoint, published on a real events stream before the
// valid one (where it stays for days), is skipped with a warning by the
// wait `supflow evaluate --wait` runs, which returns the valid checkpoint;
// it made the command exit 1.
func TestWaitCheckpointSkipsForgedEventOnTheBus(t *testing.T) {
	emb, err := bus.StartEmbedded(t.Context(), bus.EmbeddedConfig{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	b, err := bus.Connect(t.Context(), bus.Config{URL: emb.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Provision(t.Context(), bus.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	ev := b.Events()
	forged := messages.Event{RunID: "r", Kind: messages.EventPretrainDone, Ref: "runs/r/checkpoints/../../../etc/passwd"}
	valid := messages.Event{RunID: "r", Kind: messages.EventPretrainDone, Ref: runs.Checkpoint("r", runs.Last)}
	for _, e := range []messages.Event{forged, valid} {
		if err := ev.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var logs bytes.Buffer
	key, err := evaluate.WaitCheckpoint(ctx, ev, "r", true, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || key != valid.Ref {
		t.Fatalf("WaitCheckpoint = %q, %v; want %q", key, err, valid.Ref)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), `has a \"..\" segment`) {
		t.Errorf("no warning naming the forged event:\n%s", logs.String())
	}
}
