package evaluate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/runs"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/store"
)

type frozen struct{ meanEncoder }

func (*frozen) Load([]byte) (checkpoint.Meta, error) { return checkpoint.Meta{Epoch: 3, Step: 30}, nil }

type events struct {
	published []messages.Event
	waitFor   messages.Event
}

func (e *events) Publish(_ context.Context, ev messages.Event) error {
	e.published = append(e.published, ev)
	return nil
}

func (e *events) Wait(ctx context.Context, _ string, kind messages.EventKind, _ func(messages.Event) bool) (messages.Event, error) {
	if e.waitFor.Kind != kind {
		<-ctx.Done()
		return messages.Event{}, ctx.Err()
	}
	return e.waitFor, nil
}

func entries(n int) []dataset.Entry {
	out := make([]dataset.Entry, n)
	for i := range out {
		out[i] = dataset.Entry{Key: fmt.Sprintf("k%d", i), Label: int32(i % 2), Split: "x"}
	}
	return out
}

// TestStageWritesReportAndEvalDone: a checkpoint is scored, report.json and
// report.html land in the bucket and the work dir, and EvalDone names the
// report.
func TestStageWritesReportAndEvalDone(t *testing.T) {
	st := storetest.New(t)
	ckpt := runs.Checkpoint("r", runs.Last)
	if err := st.Put(t.Context(), ckpt, []byte("weights"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	dir := t.TempDir()
	s, err := New(Config{RunID: "r", Train: entries(40), Test: entries(20), Classes: []string{"a", "b"},
		WorkDir: dir, Scoring: cfg()}, Deps{Engine: &frozen{}, Load: loader, Store: st, Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(t.Context(), ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if out.LinearTop1 < 0.99 || out.ReportKey != runs.Key("r", runs.ReportHTML) {
		t.Errorf("outcome %+v", out)
	}
	for _, name := range []string{runs.ReportJSON, runs.ReportHTML} {
		if _, err := st.Get(t.Context(), runs.Key("r", name)); err != nil {
			t.Errorf("bucket %s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "r", name)); err != nil {
			t.Errorf("work dir: %v", err)
		}
	}
	if len(ev.published) != 1 || ev.published[0].Kind != messages.EventEvalDone || ev.published[0].Ref != out.ReportKey {
		t.Errorf("events %+v", ev.published)
	}
	if _, err := s.Run(t.Context(), runs.Checkpoint("r", "epoch-9")); err == nil {
		t.Error("a missing checkpoint was evaluated")
	}
}

// TestWaitCheckpoint: the key comes from PretrainDone and must lie under
// the run's checkpoints; without the event and without wait it gives up.
func TestWaitCheckpoint(t *testing.T) {
	ok := &events{waitFor: messages.Event{Kind: messages.EventPretrainDone, Ref: runs.Checkpoint("r", runs.Last)}}
	if key, err := WaitCheckpoint(t.Context(), ok, "r", true); err != nil || key != ok.waitFor.Ref {
		t.Fatalf("%q, %v", key, err)
	}
	forged := &events{waitFor: messages.Event{Kind: messages.EventPretrainDone, Ref: "runs/other/checkpoints/last.safetensors"}}
	if _, err := WaitCheckpoint(t.Context(), forged, "r", true); err == nil {
		t.Fatal("a checkpoint of another run was accepted")
	}
	if _, err := WaitCheckpoint(t.Context(), &events{}, "r", false); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("no event: %v", err)
	}
}
