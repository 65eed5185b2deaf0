package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/internal/hlorunner"
	"github.com/supflow/supflow/xla"
)

// TestRunOnXLABackend runs `supflow run` (everything embedded, in this
// process) with train.backend xla on a small RGB ImageFolder, the
// programs executed by the evaluator in place of a PJRT plugin with two
// devices (opened once), train.devices 0 training on both: the train stage, the kNN monitor and the evaluation drive the XLA
// engine and the
// run ends with its RESULT line; then `run --resume` on the CPU backend
// continues from the XLA run's checkpoint at the next epoch.
func TestRunOnXLABackend(t *testing.T) {
	old := openRunner
	t.Cleanup(func() { openRunner = old })
	var opened []string
	r := &replicated{Runner: hlorunner.New(hlorunner.WithDevices(2))}
	openRunner = func(path string) (xla.Runner, error) {
		opened = append(opened, path)
		return r, nil
	}
	plugin := filepath.Join(t.TempDir(), "pjrt_c_api_cuda_plugin.so")
	if err := os.WriteFile(plugin, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	preset, err := filepath.Abs("../../configs/small-rgb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tree, work := ownTree(t), t.TempDir()
	supflow := func(args ...string) (string, string) {
		t.Helper()
		argv := append(args, "--config", preset, "--set", "dataset.path="+tree, "--set", "run.work_dir="+work,
			"--set", "model.widths=4,8,8,8", "--set", "augment.size=16", "--set", "decode.resize_shorter=20",
			"--set", "train.warm_epochs=1", "--set", "train.knn_every=1", "--set", "train.checkpoint_every=1", "--set", "evaluate.epochs=1")
		code, out, logs := runCLI(t.Context(), argv...)
		if code != 0 {
			t.Fatalf("supflow %v: exit %d\n%s\n%s", args, code, out, clustertest.Tail(logs, 3000))
		}
		return out, logs
	}
	out, logs := supflow("run", "--set", "train.backend=xla", "--set", "train.pjrt_plugin="+plugin, "--set", "train.epochs=2")
	if len(opened) != 1 || opened[0] != plugin {
		t.Errorf("plugins opened %q, want %s once (the trainer and the evaluation share it)", opened, plugin)
	}
	if r.programs == 0 {
		t.Error("no data-parallel step program compiled on the two devices")
	}
	for e := 1; e <= 2; e++ {
		if s := clustertest.EpochStats(logs)[e]; s.Samples != 48 || s.Dropped != 0 {
			t.Errorf("xla epoch %d: %d samples trained, %d dropped; want all 48 train images", e, s.Samples, s.Dropped)
		}
	}
	if !strings.Contains(logs, "kNN monitor") || !regexp.MustCompile(`RESULT linear_top1=[0-9.]+ knn_top1=[0-9.]+`).MatchString(out) {
		t.Errorf("no kNN monitor line or RESULT line:\n%s\n%s", out, clustertest.Tail(logs, 3000))
	}

	opened = nil
	_, logs = supflow("run", "--resume", "--set", "train.epochs=3")
	if len(opened) != 0 {
		t.Errorf("the CPU backend opened a plugin: %q", opened)
	}
	if !regexp.MustCompile(`msg=resumed (?:\S+ )*?epoch=2 `).MatchString(logs) {
		t.Errorf("the CPU run did not resume from the XLA run's epoch 2:\n%s", clustertest.Tail(logs, 3000))
	}
	if s := clustertest.EpochStats(logs)[3]; s.Samples != 48 {
		t.Errorf("cpu epoch 3: %d samples trained, want 48", s.Samples)
	}
}

// replicated counts the data-parallel programs compiled on a runner.
type replicated struct {
	*hlorunner.Runner
	programs int
}

func (r *replicated) Compile(p *xla.Program) (xla.Executable, error) {
	if p.Replicas > 1 {
		r.programs++
	}
	return r.Runner.Compile(p)
}
