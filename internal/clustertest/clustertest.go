// Package clustertest runs supflow the way a deployment does, for
// integration tests (TestIntegration*): a real MinIO server
// (internal/miniotest), a real nats-server with JetStream file storage
// (embedded in the test process, reached over TCP) and each stage as a
// separate `supflow` process built from this module. Faults are injected
// from outside: signals to the processes, stopping MinIO, restarting NATS.
// It imports only the standard library and supflow packages, and is for
// tests only.
package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/internal/miniotest"
	"github.com/supflow/supflow/stages/train"
	"github.com/supflow/supflow/store"
)

// Bucket and RunID are the bucket and run id of every cluster's
// pipeline.yaml.
const (
	Bucket = "itest"
	RunID  = "itest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/supflow once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "supflow-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "supflow")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/supflow/supflow/cmd/supflow").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Cluster is a MinIO server, a NATS server and a work directory with a
// pipeline.yaml pointing at both. Its methods must be called from the test
// goroutine.
type Cluster struct {
	t         testing.TB
	bin       string
	dir       string
	cfgPath   string
	env       []string
	minio     *miniotest.Server
	nats      *bus.Embedded
	natsPort  int
	natsStore string
	procs     []*Proc
}

// New starts MinIO and NATS and writes pipeline.yaml: run id and bucket
// "itest", the servers' addresses, bus.ack_wait 3s, bus.max_deliver 3, text
// logs at info level, then yaml, whose keys override those. Everything is
// stopped in t.Cleanup, and the tail of each process's output is logged if
// the test failed. t may be a benchmark's (bench/feeder). Without a MinIO
// binary the test skips (fails when CI=true), as with miniotest.
func New(t testing.TB, yaml string) *Cluster {
	t.Helper()
	bin := Binary(t)
	m := miniotest.Start(t)
	dir := t.TempDir()
	c := &Cluster{t: t, bin: bin, dir: dir, minio: m, natsStore: filepath.Join(dir, "nats"),
		cfgPath: filepath.Join(dir, "pipeline.yaml"), natsPort: -1}
	c.StartNATS()
	t.Cleanup(func() { c.nats.Close() })
	ak, sk := m.Credentials()
	c.env = append(os.Environ(), "SUPFLOW_S3_ACCESS_KEY="+ak, "SUPFLOW_S3_SECRET_KEY="+sk)
	base := fmt.Sprintf(`run: {id: %s, seed: 3, work_dir: %q}
store: {embedded: false, endpoint: %q, bucket: %s}
bus: {embedded: false, url: %q, ack_wait: 3s, max_deliver: 3}
log: {format: text, level: info}
`, RunID, c.WorkDir(), m.Endpoint(), Bucket, c.nats.URL())
	if err := os.WriteFile(c.cfgPath, []byte(base+yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// The bus as the failure left it, before the stages go.
			t.Logf("--- supflow status:\n%s", c.status())
		}
		if t.Failed() {
			// Where each live stage is stuck: Go prints every goroutine's
			// stack on SIGQUIT and exits (how a lock-order deadlock in
			// bus was found).
			for _, p := range c.procs {
				if !p.Exited() {
					_ = p.cmd.Process.Signal(syscall.SIGQUIT)
				}
			}
			for _, p := range c.procs {
				select {
				case <-p.done:
				case <-time.After(10 * time.Second):
				}
			}
		}
		for _, p := range c.procs {
			if !p.Exited() {
				_ = p.cmd.Process.Kill()
				p.wait()
			}
		}
		if t.Failed() {
			for _, p := range c.procs {
				out, dump, _ := strings.Cut(p.Output(), "SIGQUIT: quit")
				t.Logf("--- %s output (tail):\n%s", p.name, Tail(out, 3000))
				if g := Goroutines(dump); g != "" {
					t.Logf("--- %s at the failure, its goroutines in supflow code:\n%s", p.name, g)
				}
			}
		}
	})
	return c
}

// status is `supflow status`'s output, or why there is none.
func (c *Cluster) status() string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, "status", "--config", c.cfgPath)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(%v)", out, err)
	}
	return string(out)
}

// Dir is the cluster's temporary directory.
func (c *Cluster) Dir() string { return c.dir }

// WorkDir is run.work_dir of the configuration.
func (c *Cluster) WorkDir() string { return filepath.Join(c.dir, "work") }

// ConfigPath is the path of pipeline.yaml.
func (c *Cluster) ConfigPath() string { return c.cfgPath }

// MinIO is the S3 server; Stop and Start simulate an outage.
func (c *Cluster) MinIO() *miniotest.Server { return c.minio }

// NATSURL is the NATS client URL; it stays the same across RestartNATS.
func (c *Cluster) NATSURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", c.natsPort) }

// Store returns a client of the cluster's bucket with the root credentials.
func (c *Cluster) Store() *store.Client {
	c.t.Helper()
	ak, sk := c.minio.Credentials()
	cl, err := store.New(store.Config{Endpoint: c.minio.Endpoint(), Bucket: Bucket, AccessKey: ak, SecretKey: sk})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// Bus connects to the cluster's NATS server and closes the connection in
// t.Cleanup.
func (c *Cluster) Bus() *bus.Bus {
	c.t.Helper()
	b, err := bus.Connect(context.Background(), bus.Config{URL: c.NATSURL(), Name: "clustertest"}, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { b.Close() })
	return b
}

// StopNATS shuts the NATS server down; the stage processes see their
// connections drop.
func (c *Cluster) StopNATS() {
	c.nats.Close()
}

// StartNATS starts the NATS server, on the same port and JetStream store
// directory as before once it has run, so that clients reconnect to the
// same URL and find their streams and consumers.
func (c *Cluster) StartNATS() {
	c.t.Helper()
	var (
		n   *bus.Embedded
		err error
	)
	// The port may stay busy for a moment after a shutdown.
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err = bus.StartEmbedded(context.Background(), bus.EmbeddedConfig{StoreDir: c.natsStore, Port: c.natsPort})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("clustertest: start NATS: %v", err)
	}
	if c.natsPort < 0 {
		_, port, err := net.SplitHostPort(n.URL()[len("nats://"):])
		if err != nil {
			c.t.Fatal(err)
		}
		c.natsPort, _ = strconv.Atoi(port)
	}
	c.nats = n
}

// RestartNATS stops the NATS server, waits down, and starts it again on
// the same port and store.
func (c *Cluster) RestartNATS(down time.Duration) {
	c.t.Helper()
	c.StopNATS()
	time.Sleep(down)
	c.StartNATS()
}

// Command returns `supflow args... --config pipeline.yaml` with the
// cluster's environment (S3 credentials included), not started; callers may
// append to its Env.
func (c *Cluster) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append(args, "--config", c.cfgPath)...)
	cmd.Env = append([]string{}, c.env...)
	return cmd
}

// Start runs `supflow args... --config pipeline.yaml` in the background.
func (c *Cluster) Start(name string, args ...string) *Proc {
	c.t.Helper()
	return c.StartEnv(name, nil, args...)
}

// StartEnv is Start with extra environment variables, which override the
// cluster's.
func (c *Cluster) StartEnv(name string, env []string, args ...string) *Proc {
	c.t.Helper()
	cmd := c.Command(args...)
	cmd.Env = append(cmd.Env, env...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &Proc{t: c.t, name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p
}

// Procs returns every process started so far, exited ones included.
func (c *Cluster) Procs() []*Proc { return append([]*Proc(nil), c.procs...) }

// Wait waits for p to exit and fails the test on a non-zero exit or after
// limit.
func (c *Cluster) Wait(p *Proc, limit time.Duration) {
	c.t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			c.t.Fatalf("%s: %v\n%s", p.name, p.err, Tail(p.Output(), 4000))
		}
	case <-time.After(limit):
		c.t.Fatalf("%s did not finish within %v\n%s", p.name, limit, Tail(p.Output(), 4000))
	}
}

// WaitExit waits for p to exit and returns its exit code (-1 if a signal
// killed it), failing the test after limit.
func (c *Cluster) WaitExit(p *Proc, limit time.Duration) int {
	c.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		c.t.Fatalf("%s did not exit within %v\n%s", p.name, limit, Tail(p.Output(), 4000))
	}
	return 0
}

// Proc is one supflow process.
type Proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error // of cmd.Wait, set before done closes
}

// Name is the name given to Start.
func (p *Proc) Name() string { return p.name }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Proc) wait() { <-p.done }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Proc) Kill() {
	p.t.Helper()
	p.Signal(syscall.SIGKILL)
	p.wait()
}

// WaitFor polls the output until re matches and fails the test after limit.
func (p *Proc) WaitFor(re *regexp.Regexp, limit time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	for !re.MatchString(p.Output()) {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %q within %v\n%s", p.name, re, limit, Tail(p.Output(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Goroutines keeps, of a Go traceback (a SIGQUIT's), the goroutines with
// a frame in supflow's own packages, without the runtime's frames and
// frame addresses.
func Goroutines(dump string) string {
	var b strings.Builder
	for g := range strings.SplitSeq(dump, "\n\n") {
		g = strings.TrimSpace(g)
		if !strings.HasPrefix(g, "goroutine ") || !strings.Contains(g, "github.com/supflow/supflow/") {
			continue
		}
		lines := strings.Split(frameAddr.ReplaceAllString(g, ""), "\n")
		for i := 0; i < len(lines); i++ {
			if strings.HasPrefix(lines[i], "runtime.") {
				i++ // and its file:line
				continue
			}
			b.WriteString(lines[i])
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.String()
}

var frameAddr = regexp.MustCompile(` fp=0x[0-9a-f]+ sp=0x[0-9a-f]+ pc=0x[0-9a-f]+| gp=0x[0-9a-f]+ m=\S+( mp=0x[0-9a-f]+)?`)

// LogLine matches a stage's log line (slog's text format) with message msg
// and attribute key=value: LogLine("epoch trained", "epoch", 2) matches
// `msg="epoch trained" stage=train epoch=2 samples=...`.
func LogLine(msg, key string, value int) *regexp.Regexp {
	if strings.ContainsAny(msg, " =\"") {
		msg = strconv.Quote(msg)
	}
	return regexp.MustCompile(fmt.Sprintf(`msg=%s (?:\S+ )*?%s=%d `, regexp.QuoteMeta(msg), regexp.QuoteMeta(key), value))
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Epoch is the trainer's account of one epoch.
type Epoch struct {
	Samples    int // distinct samples stepped
	Dropped    int // samples dead-lettered
	Duplicates int // redeliveries the trainer removed
	// The exact sets, ascending; nil when the line does not carry them.
	TrainedIDs []uint64
	DroppedIDs []uint64
}

var (
	epochLine = regexp.MustCompile(`msg="epoch trained" (?:\S+ )*?epoch=(\d+) samples=(\d+) dropped=(\d+) duplicates=(\d+).*`)
	idsField  = regexp.MustCompile(` (trained|dropped)_ids=("[^"]*"|\S*)`)
)

// EpochStats parses the trainer's `epoch trained` log lines, by epoch; a
// later line for the same epoch (after a restart) replaces an earlier one.
func EpochStats(out string) map[int]Epoch {
	stats := map[int]Epoch{}
	for _, m := range epochLine.FindAllStringSubmatch(out, -1) {
		e, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		u, _ := strconv.Atoi(m[4])
		ep := Epoch{Samples: s, Dropped: d, Duplicates: u}
		for _, f := range idsField.FindAllStringSubmatch(m[0], -1) {
			ids, err := train.ParseIDs(strings.Trim(f[2], `"`))
			if err != nil {
				continue // counts only
			}
			if f[1] == "trained" {
				ep.TrainedIDs = ids
			} else {
				ep.DroppedIDs = ids
			}
		}
		stats[e] = ep
	}
	return stats
}
