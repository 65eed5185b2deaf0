//go:build compose

package composetest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cleanupTime is kept from the test's -timeout for stopping the project
// and printing logs after a failure.
const cleanupTime = 2 * time.Minute

// resultLine is the evaluate service's last line.
var resultLine = regexp.MustCompile(`(?m)^RESULT linear_top1=([0-9.]+) knn_top1=([0-9.]+) report=(\S+)$`)

// TestIntegrationCompose builds the images (make images, cached between
// runs) and runs deploy/docker-compose.yml as a project of its own
// (supflow-compose-<pid>) with augment scaled to 3: NATS, MinIO, ingest of the
// image's MNIST, feeder, decode, augment, train and evaluate. It waits for
// evaluate to exit 0 with a RESULT line, reads the report back from the
// bucket with a one-off `supflow report`, and always ends with
// `down -v --remove-orphans`, after which no container, network or volume
// of the project may be left. It is bounded by the test's -timeout only.
func TestIntegrationCompose(t *testing.T) {
	ctx, p, begin := startJob(t, []string{"docker-compose.yml"}, "", "--scale", "augment=3")
	start := time.Now()

	eval := waitEvaluate(ctx, t, p)
	t.Logf("job done (up to evaluate's exit): %s", time.Since(start).Round(time.Second))
	logs, err := Docker(ctx, "logs", eval)
	if err != nil {
		t.Fatal(err)
	}
	m := resultLine.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("evaluate's log has no RESULT line:\n%s", logs)
	}
	t.Log(m[0])
	if top1, _ := strconv.ParseFloat(m[1], 64); top1 < 0.3 {
		t.Errorf("linear_top1 %s: below 0.3 (chance is 0.1)", m[1])
	}

	// The report in the bucket: a one-off supflow container reads
	// runs/<run id>/report.json back and renders it.
	out, err := p.Output(ctx, "run", "--rm", "--no-deps", "evaluate", "report",
		"--config", "/etc/supflow/compose.yaml", "--out", "/tmp/report")
	if err != nil || !strings.Contains(out, "/tmp/report/report.html") {
		t.Fatalf("supflow report from the bucket: %v\n%s", err, out)
	}
	if n := countAugment(ctx, t, p); n != 3 {
		t.Errorf("augment containers = %d, want 3", n)
	}
	t.Logf("total: %s", time.Since(begin).Round(time.Second))
}

// deadlineContext is the test's context, cancelled cleanupTime before the
// test's deadline so that cleanup still has time.
func deadlineContext(t *testing.T) context.Context {
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-cleanupTime))
		t.Cleanup(cancel)
	}
	return ctx
}

// startJob skips without a Docker engine and compose (fails under CI),
// builds the images (make images, cached between runs), copies the compose
// files of deploy/ into a temporary project directory with a .env of
// fresh secrets plus env (more SUPFLOW_ lines), and runs `up -d up...` as
// a project of its own, which `down -v` removes when the test ends. It
// returns the test's context, the project and when it began.
func startJob(t *testing.T, files []string, env string, up ...string) (context.Context, *Project, time.Time) {
	t.Helper()
	ctx := deadlineContext(t)
	compose, err := Command(ctx)
	if err == nil {
		_, err = Docker(ctx, "info", "--format", "{{.ServerVersion}}")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs a Docker engine and compose: %v", err)
		}
		t.Skipf("no Docker engine or compose: %v", err)
	}
	t.Logf("compose command: %s", strings.Join(compose, " "))
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	build := exec.CommandContext(ctx, "make", "-C", root, "--no-print-directory", "images")
	build.Stdout, build.Stderr = t.Output(), t.Output()
	if err := build.Run(); err != nil {
		t.Fatalf("make images: %v", err)
	}
	t.Logf("make images: %s", time.Since(begin).Round(time.Second))

	dir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, "deploy", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env = fmt.Sprintf("SUPFLOW_S3_ACCESS_KEY=supflow\nSUPFLOW_S3_SECRET_KEY=%s\nSUPFLOW_NATS_USER=supflow\nSUPFLOW_NATS_PASSWORD=%s\n",
		rand.Text(), rand.Text()) + env
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	// Unique per test and process: tests of several checkouts may share
	// the Docker engine.
	name := fmt.Sprintf("supflow-%s-%d", strings.ToLower(strings.TrimPrefix(t.Name(), "TestIntegration")), os.Getpid())
	p := &Project{Compose: compose, Name: name, Dir: dir, Files: files}
	t.Cleanup(func() { down(t, p) })

	start := time.Now()
	if out, err := p.Output(ctx, append([]string{"up", "-d"}, up...)...); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	t.Logf("up -d: %s", time.Since(start).Round(time.Second))
	return ctx, p, begin
}

// container is what the test reads of docker inspect.
type container struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status   string
		ExitCode int
	}
	RestartCount int
	Config       struct {
		Labels map[string]string
	}
}

func (c container) service() string { return c.Config.Labels["com.docker.compose.service"] }

// containers inspects every container of the project, one-off ones too.
func containers(ctx context.Context, p *Project) ([]container, error) {
	ids, err := Docker(ctx, "ps", "-aq", "--filter", "label=com.docker.compose.project="+p.Name)
	if err != nil || strings.TrimSpace(ids) == "" {
		return nil, err
	}
	out, err := Docker(ctx, append([]string{"inspect"}, strings.Fields(ids)...)...)
	if err != nil {
		return nil, err
	}
	var cs []container
	return cs, json.Unmarshal([]byte(out), &cs)
}

// waitEvaluate polls the project's containers until evaluate has exited 0
// and returns its ID. A failed ingest, a crash loop (three restarts) or an
// evaluate that exited non-zero for good fails the test at once.
func waitEvaluate(ctx context.Context, t *testing.T, p *Project) string {
	t.Helper()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	last := ""
	for {
		cs, err := containers(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, c := range cs {
			states = append(states, fmt.Sprintf("%s=%s/%d/r%d", strings.TrimPrefix(c.Name, "/"+p.Name+"_"), c.State.Status, c.State.ExitCode, c.RestartCount))
			switch {
			case c.service() == "evaluate" && c.State.Status == "exited" && c.State.ExitCode == 0:
				return c.ID
			case c.service() == "ingest" && c.State.Status == "exited" && c.State.ExitCode != 0:
				t.Fatalf("ingest exited %d", c.State.ExitCode)
			case c.RestartCount >= 3:
				t.Fatalf("%s restarted %d times", c.Name, c.RestartCount)
			}
		}
		if s := strings.Join(states, " "); s != last {
			t.Logf("%s: %s", time.Now().Format("15:04:05"), s)
			last = s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("evaluate did not finish before the test's deadline: %v", ctx.Err())
		case <-tick.C:
		}
	}
}

func countAugment(ctx context.Context, t *testing.T, p *Project) int {
	t.Helper()
	cs, err := containers(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.service() == "augment" {
			n++
		}
	}
	return n
}

// down prints the logs when the test failed, removes the project with its
// volumes and checks that nothing of it is left.
func down(t *testing.T, p *Project) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTime)
	defer cancel()
	if t.Failed() {
		out, _ := p.Output(ctx, "logs", "--no-color", "--tail", "100")
		t.Logf("logs:\n%s", out)
	}
	start := time.Now()
	if out, err := p.Output(ctx, "down", "-v", "--remove-orphans", "--timeout", "10"); err != nil {
		t.Errorf("down: %v\n%s", err, out)
	}
	t.Logf("down -v: %s", time.Since(start).Round(time.Second))
	label := "label=com.docker.compose.project=" + p.Name
	for _, args := range [][]string{
		{"ps", "-aq", "--filter", label},
		{"network", "ls", "-q", "--filter", label},
		{"network", "ls", "-q", "--filter", "name=" + p.Name + "_"},
		{"volume", "ls", "-q", "--filter", label},
		{"volume", "ls", "-q", "--filter", "name=" + p.Name + "_"},
	} {
		out, err := Docker(ctx, args...)
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("left after down -v (docker %s): %v %s", strings.Join(args, " "), err, out)
		}
	}
}
