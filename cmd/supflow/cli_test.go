package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/supflow/supflow/config"
	"github.com/supflow/supflow/internal/clustertest"
)

// runCLI runs the command line in process with ctx and returns the exit
// code and what was printed.
func runCLI(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// fifo makes a named pipe no one writes to: opening it for reading the
// ordinary way blocks until SIGKILL.
func fifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sparse makes a file of n zero bytes without writing them.
func sparse(t *testing.T, n int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFilesAreBoundedAndRegular: every file supflow reads at start (the
// configuration, a *_FILE secret, the files pipeline.yaml names for the
// bus and the store) is refused with exit code 2, naming what named it,
// when it is a device, a FIFO, a directory or too large. Before,
// --config /dev/zero ran until the kernel killed the process and a FIFO
// (as --config or as SUPFLOW_NATS_PASSWORD_FILE) hung it until SIGKILL.
func TestFilesAreBoundedAndRegular(t *testing.T) {
	external := write(t, "bus: {embedded: false, url: \"nats://127.0.0.1:1\"}\nstore: {embedded: false, endpoint: \"127.0.0.1:1\", secure: true}\n")
	for _, bad := range []struct{ name, path string }{
		{"device", "/dev/zero"},
		{"FIFO", fifo(t)},
		{"directory", t.TempDir()},
		{"too large", sparse(t, 2<<20)},
	} {
		for _, src := range []struct {
			name string
			args []string
			env  map[string]string
			want string
		}{
			{"--config", []string{"config", "--config", bad.path}, nil, "--config"},
			{"secret file", []string{"decode", "--config", external}, map[string]string{"SUPFLOW_NATS_PASSWORD_FILE": bad.path}, "SUPFLOW_NATS_PASSWORD_FILE"},
			{"bus.nkey_file", []string{"decode", "--config", external, "--set", "bus.nkey_file=" + bad.path}, nil, "bus.nkey_file"},
			{"bus.creds_file", []string{"status", "--config", external, "--set", "bus.creds_file=" + bad.path}, nil, "bus.creds_file"},
			{"bus.ca_file", []string{"decode", "--config", external, "--set", "bus.ca_file=" + bad.path}, nil, "bus.ca_file"},
			{"store.ca_file", []string{"ingest", "--config", external, "--set", "store.ca_file=" + bad.path}, nil, "store.ca_file"},
		} {
			t.Run(bad.name+"/"+src.name, func(t *testing.T) {
				for k, v := range src.env {
					t.Setenv(k, v)
				}
				code, _, stderr := runCLI(t.Context(), src.args...)
				if code != exitUsage || !strings.Contains(stderr, src.want) || !strings.Contains(stderr, bad.path) {
					t.Fatalf("exit %d, want 2 naming %s and the file\n%s", code, src.want, stderr)
				}
			})
		}
	}
}

// write puts body into a file and returns its path.
func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigErrorsNeverEchoTheFile: `--config <secret file>` printed the
// secret's first characters in the parse error.
func TestConfigErrorsNeverEchoTheFile(t *testing.T) {
	const secret = "wJalrXUtnFEMI-K7MDENG"
	for _, body := range []string{secret + "\n", "train:\n  epochs: " + secret + "\n", "aws_secret_access_key = " + secret + "\n"} {
		code, _, stderr := runCLI(t.Context(), "config", "--config", write(t, body))
		if code != exitUsage || strings.Contains(stderr, secret[:5]) {
			t.Errorf("exit %d, want 2 without the secret:\n%s", code, stderr)
		}
	}
}

// TestSignalBeforeStart: a signal that arrives while the configuration is
// being read ends the command with 128 + the signal, not after whatever
// the read waits for.
func TestSignalBeforeStart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		ctx, cancel := context.WithCancelCause(t.Context())
		cancel(stopped{sig})
		code, _, stderr := runCLI(ctx, "config", "--config", "")
		if code != 128+int(sig) || !strings.Contains(stderr, "stopped by "+signalName(sig)) {
			t.Errorf("%v: exit %d\n%s", sig, code, stderr)
		}
	}
	// What interruptible waits for is abandoned at once.
	ctx, cancel := context.WithCancelCause(t.Context())
	block := make(chan struct{})
	defer close(block)
	go cancel(stopped{syscall.SIGTERM})
	err := interruptible(ctx, func() error { <-block; return nil })
	if st, ok := stopCause(ctx); !ok || !errors.Is(err, context.Canceled) || st.exitCode() != 143 {
		t.Errorf("interruptible = %v, cause %v", err, context.Cause(ctx))
	}
}

// TestPositionalArguments: an argument the command does not take is
// refused with exit code 2, naming it, and flags after a positional are
// parsed (before, `supflow train foo --resume` ignored foo and --resume).
// `config keys` is the one positional argument.
func TestPositionalArguments(t *testing.T) {
	for name := range commands() {
		for _, args := range [][]string{{"foo"}, {"foo", "--log-level", "debug"}, {"keys", "extra"}, {"--", "-x"}} {
			if name == "config" && args[0] == "keys" && len(args) == 1 {
				continue
			}
			argv := append([]string{name, "--config", ""}, args...)
			code, stdout, stderr := runCLI(t.Context(), argv...)
			if code != exitUsage || !strings.Contains(stderr, "unexpected argument") || stdout != "" {
				t.Errorf("%q: exit %d, want 2\n%s", argv, code, stderr)
			}
			if want := `"` + strings.TrimPrefix(args[0], "--") + `"`; args[0] != "--" && !strings.Contains(stderr, want) {
				t.Errorf("%q: %q does not name %s", argv, stderr, want)
			}
		}
	}
	// Flags after `config keys` apply: a bad --set is refused.
	if code, _, stderr := runCLI(t.Context(), "config", "keys", "--config", "", "--set", "train.epochs=x"); code != exitUsage {
		t.Errorf("config keys --set train.epochs=x: exit %d\n%s", code, stderr)
	}
	code, stdout, _ := runCLI(t.Context(), "config", "keys", "--config", "")
	if code != 0 || !strings.Contains(stdout, "SUPFLOW_TRAIN_BATCH_SIZE") {
		t.Errorf("config keys: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = runCLI(t.Context(), "config", "--config", "", "--set", "train.epochs=7")
	if code != 0 || !strings.Contains(stdout, "epochs: 7") {
		t.Errorf("config: exit %d\n%s", code, stdout)
	}
}

// TestUnknownEnvironmentRefused: a misspelled SUPFLOW_* variable was
// ignored (the setting kept its value); now the command refuses to start,
// naming it and the closest variable. The variables that are not settings
// (otherEnv) pass.
func TestUnknownEnvironmentRefused(t *testing.T) {
	const misspelled = "SUPFLOW_" + "TRAIN_EPOCS" // not one word: TestEveryVariableIsKnown
	t.Setenv(misspelled, "3")
	code, _, stderr := runCLI(t.Context(), "config", "--config", "")
	if code != exitUsage || !strings.Contains(stderr, misspelled) || !strings.Contains(stderr, "SUPFLOW_TRAIN_EPOCHS") {
		t.Fatalf("exit %d, want 2 naming the variable and the closest\n%s", code, stderr)
	}
	os.Unsetenv(misspelled)
	for _, name := range otherEnv {
		t.Setenv(name, "")
	}
	if code, _, stderr := runCLI(t.Context(), "config", "--config", ""); code != 0 {
		t.Fatalf("with every variable of otherEnv set: exit %d\n%s", code, stderr)
	}
}

// TestEveryVariableIsKnown: each SUPFLOW_* name in the repository (code,
// scripts, manifests, docs) is a setting's variable or in otherEnv, so
// that no variable the project itself sets is refused. (Tests spell the
// misspelled ones they need in two parts.)
func TestEveryVariableIsKnown(t *testing.T) {
	known := map[string]bool{}
	for _, k := range config.Keys() {
		known[config.EnvName(k)] = true
	}
	for _, n := range otherEnv {
		known[n] = true
	}
	name := regexp.MustCompile(`SUPFLOW_[A-Z0-9_]*[A-Z0-9]\b`)
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") && n != ".ci" || n == "testdata" || n == "out" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if info, err := d.Info(); err != nil || info.Size() > 1<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllString(string(b), -1) {
			if !known[m] {
				t.Errorf("%s: %s is neither a setting's variable nor in otherEnv (envvars.go)", path, m)
				known[m] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestModelTooLargeForTheMachine: validation accepted
// model.blocks=4096,4096,4096,4096; `supflow run` then ingested the data
// set and died of OOM with a 1,488-line trace and exit code 2. Now every
// command that builds the model refuses it before starting anything, with
// the estimate and the machine's memory, and warns when it comes close.
func TestModelTooLargeForTheMachine(t *testing.T) {
	old := machineMemory
	t.Cleanup(func() { machineMemory = old })
	machineMemory = func() uint64 { return 16 << 30 }
	work := t.TempDir()
	for _, args := range [][]string{
		{"run", "--set", "model.blocks=4096,4096,4096,4096"},
		{"train", "--set", "model.widths=4096,4096,4096,4096", "--set", "bus.embedded=false", "--set", "bus.url=nats://127.0.0.1:1"},
		{"evaluate", "--checkpoint", "runs/x/checkpoints/last.safetensors", "--set", "model.blocks=4096,4096,4096,4096"},
		{"run", "--set", "train.batch_size=16384", "--set", "bus.stream_max_msgs=40000"},
	} {
		argv := append(args, "--config", "", "--set", "run.work_dir="+work)
		code, _, stderr := runCLI(t.Context(), argv...)
		if code != exitUsage || !strings.Contains(stderr, "needs about") || !strings.Contains(stderr, "more than the 16.0 GiB") {
			t.Errorf("%q: exit %d, want 2 with the estimate\n%s", argv, code, stderr)
		}
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("something started: %s holds %d entries", work, len(entries))
	}
	// Close to the machine's memory: a warning, and the command goes on
	// (`config` does not check, so check through the command's check).
	machineMemory = func() uint64 { return 4 << 30 }
	var logs bytes.Buffer
	e := &env{opts: &options{}, term: newTerm(&logs)}
	if err := e.prepare("run", commands()["run"]); err != nil {
		t.Fatalf("defaults on a 4 GiB machine: %v", err)
	}
	if !strings.Contains(logs.String(), "the model may not fit in memory") {
		t.Errorf("no warning for an estimate close to the machine's memory:\n%s", logs.String())
	}
}

// TestSingleStageNeedsExternalBus: `supflow decode` with the default
// embedded bus idled for ever on a private bus no other process could
// reach; every single-stage command that needs the bus now refuses it
// before starting anything, as status does.
func TestSingleStageNeedsExternalBus(t *testing.T) {
	work := t.TempDir()
	for _, args := range [][]string{{"decode"}, {"augment"}, {"train"}, {"feed"}, {"evaluate"}, {"evaluate", "--wait"}, {"status"}} {
		argv := append(args, "--config", "", "--set", "run.work_dir="+work)
		code, _, stderr := runCLI(t.Context(), argv...)
		if code != exitUsage || !strings.Contains(stderr, "inside `supflow run`") {
			t.Errorf("%q: exit %d, want 2\n%s", argv, code, stderr)
		}
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("something started: %s holds %d entries", work, len(entries))
	}
	// evaluate --checkpoint needs no bus.
	e := &env{opts: &options{checkpoint: "runs/x/checkpoints/last.safetensors"}, term: newTerm(&bytes.Buffer{})}
	if err := e.prepare("evaluate", commands()["evaluate"]); err != nil {
		t.Errorf("evaluate --checkpoint on the embedded bus: %v", err)
	}
}

// TestFeedStartEpoch: --start-epoch 0 published an epoch 0, 3 with
// epochs=2 exited 0 having done nothing, -1 failed with "overflow uint32".
// Each is refused with exit 2 before anything starts; 1..epochs pass.
func TestFeedStartEpoch(t *testing.T) {
	external := []string{"--config", "", "--set", "bus.embedded=false", "--set", "bus.url=nats://127.0.0.1:1",
		"--set", "store.embedded=false", "--set", "store.endpoint=127.0.0.1:1", "--set", "train.epochs=2"}
	for _, start := range []string{"0", "-1", "3", "4294967297"} {
		argv := append([]string{"feed", "--start-epoch", start}, external...)
		code, _, stderr := runCLI(t.Context(), argv...)
		if code != exitUsage || !strings.Contains(stderr, "--start-epoch "+start+": want an epoch in [1, 2]") {
			t.Errorf("--start-epoch %s: exit %d\n%s", start, code, stderr)
		}
	}
	code, _, stderr := runCLI(t.Context(), append([]string{"feed", "--start-epoch", "2", "--set", "feeder.epochs=1"}, external...)...)
	if code != exitUsage || !strings.Contains(stderr, "want an epoch in [1, 1]") {
		t.Errorf("feeder.epochs=1 --start-epoch 2: exit %d\n%s", code, stderr)
	}
	for _, start := range []int{1, 2} {
		e := &env{opts: &options{configPath: "", sets: []string{"bus.embedded=false", "bus.url=nats://127.0.0.1:1", "train.epochs=2"}, startEpoch: start},
			term: newTerm(&bytes.Buffer{})}
		if err := e.prepare("feed", commands()["feed"]); err != nil {
			t.Errorf("--start-epoch %d: %v", start, err)
		}
	}
}

// TestIntegrationSignalExitCodes: SIGTERM made decode exit 0 but train and
// feed exit 1. Every long-running command now exits with 128 + the signal
// (143 for SIGTERM, 130 for SIGINT), having drained (decode and augment
// within the router's 10 s close timeout, even when the signal lands while
// their subscriptions are starting), and says so on its last line. The
// signal lands while each command waits: for messages (decode, augment,
// train), for the trainer (feed), for the pretrain-done event (evaluate
// --wait) or wherever `run` is.
func TestIntegrationSignalExitCodes(t *testing.T) {
	c := clustertest.New(t, `
model: {widths: [4, 8, 8, 16], blocks: [1, 1, 1, 1], feat_dim: 32}
augment: {size: 28, flip_p: 0}
dataset: {limit_train: 64, limit_test: 32}
decode: {gray: true}
train: {epochs: 2, batch_size: 16, knn_every: 0}
metrics: {addr: "127.0.0.1:0"}
`)
	c.Wait(c.Start("ingest", "ingest"), 3*time.Minute)
	running := regexp.MustCompile(`msg="stage running"`)
	serving := regexp.MustCompile(`msg="serving metrics"`)
	for _, tt := range []struct {
		args  []string
		sig   syscall.Signal
		ready *regexp.Regexp
	}{
		{[]string{"decode"}, syscall.SIGTERM, running},
		{[]string{"augment"}, syscall.SIGINT, running},
		{[]string{"decode", "--augment"}, syscall.SIGTERM, running},
		{[]string{"decode"}, syscall.SIGTERM, serving}, // while subscribing
		{[]string{"train"}, syscall.SIGTERM, running},
		{[]string{"feed"}, syscall.SIGTERM, running},
		{[]string{"train"}, syscall.SIGTERM, serving}, // while provisioning
		{[]string{"evaluate", "--wait"}, syscall.SIGTERM, serving},
		{[]string{"run"}, syscall.SIGINT, serving},
	} {
		name := strings.Join(tt.args, " ")
		p := c.Start(name, tt.args...)
		p.WaitFor(tt.ready, 2*time.Minute)
		p.Signal(tt.sig)
		code := c.WaitExit(p, time.Minute)
		last := lastErrorLine(p.Output())
		if code != 128+int(tt.sig) || !strings.Contains(last, "stopped by "+signalName(tt.sig)) {
			t.Errorf("%s, %s: exit %d, want %d; last line %q", name, signalName(tt.sig), code, 128+int(tt.sig), last)
		}
	}
}

// TestOutputEscapesNames: a path, key or flag given by the user or a data
// set was printed raw in errors (`--config $'a\nsupflow config: forged'`
// printed a second error line); control characters are now escaped and
// each line of a multi-line error after the first is indented.
func TestOutputEscapesNames(t *testing.T) {
	forged := "\nsupflow config: forged\x1b[31m\r"
	for _, args := range [][]string{
		{"config", "--config", "/nonexistent/a" + forged},
		{"config", "--config", "", "--set", "nope" + forged + "=1"},
		{"config", "--config", "", "--" + forged},
		{"decode", "--config", "", "a" + forged},
		{"evaluate", "--config", "", "--checkpoint", "runs/a" + forged},
		{"config", "--config", write(t, "train:\n  epochs: x\n  batch_size: y\n")},
	} {
		code, _, stderr := runCLI(t.Context(), args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d\n%s", args, code, stderr)
		}
		errorLines := 0
		for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
			if strings.HasPrefix(line, "supflow config: forged") || strings.ContainsAny(line, "\x1b\r") {
				t.Errorf("%q: raw line %q in\n%s", args, line, stderr)
			}
			if strings.HasPrefix(line, "supflow "+args[0]+": ") && !strings.HasPrefix(line, "supflow "+args[0]+": "+commands()[args[0]].summary) {
				errorLines++
			}
		}
		if errorLines > 1 {
			t.Errorf("%q: %d error lines\n%s", args, errorLines, stderr)
		}
	}
	for in, want := range map[string]string{
		"plain":          "plain",
		"a\nb":           "a\n  b",
		"\x1b[31m\t\x00": `\x1b[31m\t\x00`,
		"\xff\u200b é":   `\xff\u200b é`,
	} {
		if got := errorText(in); got != want {
			t.Errorf("errorText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLogsEscapeNames: the loggers supflow builds quote a value holding a
// control character (an object key, a file name), in both formats, so a
// name cannot start a forged log record.
func TestLogsEscapeNames(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var b bytes.Buffer
		newLogger(&b, config.Log{Format: format, Level: "info"}).Info("sample left out", "key", "a\nlevel=ERROR msg=forged\x1b[31m")
		if out := strings.TrimSuffix(b.String(), "\n"); strings.ContainsAny(out, "\n\x1b") {
			t.Errorf("%s: %q", format, out)
		}
	}
}
