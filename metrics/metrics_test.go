package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeExposesTheRegistry(t *testing.T) {
	s, err := Serve("127.0.0.1:0", NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, want := range map[string]string{"/metrics": "go_goroutines", "/healthz": "ok"} {
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, b)
		}
	}
	if _, err := Serve(s.Addr().String(), NewRegistry()); err == nil {
		t.Error("a second server on the same address started")
	}
}

// TestStageMetricsOnTheEndpoint: what the train and evaluate stages
// report is on /metrics, labelled with the run id.
func TestStageMetricsOnTheEndpoint(t *testing.T) {
	reg := NewRegistry()
	tr, err := NewTrainer(reg, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := NewEvaluator(reg, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(reg, "run-1"); err == nil {
		t.Error("a second trainer registered the same series")
	}
	tr.Step(2, 64, 4.5, 0.125, 750*time.Millisecond, 250*time.Millisecond)
	tr.Step(3, 64, 4.25, 0.25, 500*time.Millisecond, 500*time.Millisecond)
	tr.KNN(0.75, 0.875)
	tr.Checkpoint(3, time.Unix(1700000000, 0))
	ev.Scored(3, 0.625, 0.9375, 0.5, time.Unix(1700000100, 0))

	s, err := Serve("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`supflow_train_loss{run_id="run-1"} 4.25`,
		`supflow_train_learning_rate{run_id="run-1"} 0.25`,
		`supflow_train_samples_per_second{run_id="run-1"} 64`,
		`supflow_train_epoch{run_id="run-1"} 3`,
		`supflow_train_steps_total{run_id="run-1"} 2`,
		`supflow_train_samples_total{run_id="run-1"} 128`,
		`supflow_train_step_seconds_total{run_id="run-1"} 1.25`,
		`supflow_train_data_wait_seconds_total{run_id="run-1"} 0.75`,
		`supflow_train_knn_top1{run_id="run-1"} 0.75`,
		`supflow_train_knn_top5{run_id="run-1"} 0.875`,
		`supflow_train_checkpoint_timestamp_seconds{run_id="run-1"} 1.7e+09`,
		`supflow_train_checkpoint_epoch{run_id="run-1"} 3`,
		`supflow_eval_accuracy{classifier="linear",metric="top1",run_id="run-1"} 0.625`,
		`supflow_eval_accuracy{classifier="linear",metric="top5",run_id="run-1"} 0.9375`,
		`supflow_eval_accuracy{classifier="knn",metric="top1",run_id="run-1"} 0.5`,
		`supflow_eval_timestamp_seconds{run_id="run-1"} 1.7000001e+09`,
		`supflow_eval_checkpoint_epoch{run_id="run-1"} 3`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
