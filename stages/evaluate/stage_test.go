package evaluate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/supflow/supflow/checkpoint"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/metrics"
	"github.com/supflow/supflow/runs"
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
	reg := metrics.NewRegistry()
	m, err := metrics.NewEvaluator(reg, "r")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{RunID: "r", Train: entries(40), Test: entries(20), Classes: []string{"a", "b"},
		WorkDir: dir, Scoring: cfg()}, Deps{Engine: &frozen{}, Load: loader, Store: st, Events: ev, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(t.Context(), ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if out.LinearTop1 < 0.99 || out.ReportKey != runs.Key("r", runs.ReportHTML) || out.Report.Linear.Protocol != ProtocolFrozen {
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
	if len(ev.published) == 1 {
		// The scores are the outcome's, and they survive the codec the bus
		// publishes with.
		b, err := messages.MarshalEvent(ev.published[0])
		if err != nil {
			t.Fatal(err)
		}
		got, err := messages.UnmarshalEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]float64{messages.ScoreLinearTop1: out.LinearTop1,
			messages.ScoreLinearTop5: out.LinearTop5, messages.ScoreKNNTop1: out.KNNTop1} {
			if v, ok := got.Score(name); !ok || v != want {
				t.Errorf("EvalDone score %s = %v, %v; want %v", name, v, ok, want)
			}
		}
	}
	// The scores reached the evaluator's metrics.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, series := range f.GetMetric() {
			name := f.GetName()
			for _, l := range series.GetLabel() {
				if l.GetName() != "run_id" {
					name += "," + l.GetValue()
				}
			}
			got[name] = series.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{"supflow_eval_accuracy,linear,top1": out.LinearTop1,
		"supflow_eval_accuracy,knn,top1": out.KNNTop1, "supflow_eval_checkpoint_epoch": 3} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if _, err := s.Run(t.Context(), runs.Checkpoint("r", "epoch-9")); err == nil {
		t.Error("a missing checkpoint was evaluated")
	}
}

// TestWaitCheckpoint: the key comes from PretrainDone; without the event
// and without wait it gives up.
func TestWaitCheckpoint(t *testing.T) {
	ok := &events{waitFor: messages.Event{Kind: messages.EventPretrainDone, Ref: runs.Checkpoint("r", runs.Last)}}
	if key, err := WaitCheckpoint(t.Context(), ok, "r", true, nil); err != nil || key != ok.waitFor.Ref {
		t.Fatalf("%q, %v", key, err)
	}
	if _, err := WaitCheckpoint(t.Context(), &events{}, "r", false, nil); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("no event: %v", err)
	}
}

// stream plays the events stream as bus.Events.Wait reads it: the
// events in order, the first one match takes, then nothing until ctx ends.
type stream struct{ evs []messages.Event }

func (s *stream) Publish(context.Context, messages.Event) error { return nil }

func (s *stream) Wait(ctx context.Context, runID string, kind messages.EventKind, match func(messages.Event) bool) (messages.Event, error) {
	for _, ev := range s.evs {
		if ev.RunID == runID && ev.Kind == kind && (match == nil || match(ev)) {
			return ev, nil
		}
	}
	<-ctx.Done()
	return messages.Event{}, ctx.Err()
}

// TestWaitCheckpointSkipsForgedEvents is the regression test of a forged
// pretrain_done event with a ".." checkpoint making `evaluate --wait` exit 1
// (and the event stays in the stream for 7 days): every kind of bad
// reference is skipped with a warning, and the valid event after it is
// the one waited for; with only bad ones, the wait goes on (ErrNotFinished
// without --wait).
func TestWaitCheckpointSkipsForgedEvents(t *testing.T) {
	valid := runs.Checkpoint("r", runs.Last)
	var evs []messages.Event
	for _, ref := range []string{
		"runs/r/checkpoints/../../other/checkpoints/last.safetensors",
		"../runs/r/checkpoints/last.safetensors",
		"runs/other/checkpoints/last.safetensors",
		"/runs/r/checkpoints/last.safetensors",
		"runs/r/report.json",
		"",
	} {
		evs = append(evs, messages.Event{RunID: "r", Kind: messages.EventPretrainDone, Ref: ref})
	}
	forged := &stream{evs: evs}
	withValid := &stream{evs: append(append([]messages.Event(nil), evs...), messages.Event{RunID: "r", Kind: messages.EventPretrainDone, Ref: valid})}
	var logs bytes.Buffer
	key, err := WaitCheckpoint(t.Context(), withValid, "r", true, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || key != valid {
		t.Fatalf("WaitCheckpoint = %q, %v; want %q after skipping the forged events", key, err, valid)
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"skipping a pretrain-done event"); n != len(evs) {
		t.Errorf("%d warnings for %d forged events:\n%s", n, len(evs), logs.String())
	}
	if _, err := WaitCheckpoint(t.Context(), forged, "r", false, nil); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("only forged events, no --wait: %v, want ErrNotFinished", err)
	}
}
