package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/dataset"
)

// TestBackendRefusedBeforeStart: an unknown backend, devices that do not
// divide the batch size and a backend xla whose plugin is not there are usage errors (exit 2)
// that name the key or the plugin and the cause, before anything starts;
// there is no fallback to the CPU.
func TestBackendRefusedBeforeStart(t *testing.T) {
	t.Setenv("SUPFLOW_PJRT_PLUGIN", "")
	work := t.TempDir()
	missing := filepath.Join(t.TempDir(), "pjrt_c_api_cuda_plugin.so")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--set", "train.backend=gpu"}, []string{"train.backend", "cpu", "xla"}},
		{[]string{"run", "--set", "train.devices=3", "--set", "train.batch_size=64"}, []string{"train.devices", "a divisor of train.batch_size 64"}},
		{[]string{"run", "--set", "train.backend=xla"}, []string{"no PJRT plugin", "train.pjrt_plugin", "SUPFLOW_PJRT_PLUGIN"}},
		{[]string{"run", "--set", "train.backend=xla", "--set", "train.pjrt_plugin=" + missing}, []string{missing, "no such file"}},
		{[]string{"evaluate", "--checkpoint", "runs/x/checkpoints/last.safetensors", "--set", "train.backend=xla", "--set", "train.pjrt_plugin=" + missing}, []string{missing, "no such file"}},
		{[]string{"embed", "--checkpoint", "runs/x/checkpoints/last.safetensors", "--set", "train.backend=xla", "--set", "train.pjrt_plugin=" + work}, []string{work, "is not a file"}},
	} {
		argv := append(c.args, "--config", "", "--set", "run.work_dir="+work)
		code, _, stderr := runCLI(t.Context(), argv...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", argv, code, exitUsage, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: error does not mention %q:\n%s", argv, w, stderr)
			}
		}
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("something started: %s holds %d entries", work, len(entries))
	}
}

// TestBackendPluginThatDoesNotLoad: a file that is not a PJRT plugin
// passes the start checks; building the engine then fails with a usage
// error naming the plugin (xla/device's ErrPlugin with cgo, the missing
// cgo without), never a CPU engine.
func TestBackendPluginThatDoesNotLoad(t *testing.T) {
	plugin := filepath.Join(t.TempDir(), "pjrt_c_api_cuda_plugin.so")
	if err := os.WriteFile(plugin, []byte("not a shared library"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", func(string) (string, bool) { return "", false },
		[]string{"train.backend=xla", "train.pjrt_plugin=" + plugin, "model.widths=4,8,8,8", "model.blocks=1,1,1,1"})
	if err != nil {
		t.Fatal(err)
	}
	d := dataset.Dataset{Info: dataset.Info{Channels: 1, Mean: []float64{0.5}, Std: []float64{0.25}}, Classes: []string{"a", "b"}}
	s := &services{}
	eng, err := newEngine(cfg, func(string) string { return "" }, s, d)
	var usage usageError
	if eng != nil || !errors.As(err, &usage) || !strings.Contains(err.Error(), plugin) {
		t.Fatalf("newEngine = %v, %v; want a usage error naming %s", eng, err, plugin)
	}
	if s.runner != nil || len(s.closers) != 0 {
		t.Errorf("a failed start left a runner or %d closers", len(s.closers))
	}
}
