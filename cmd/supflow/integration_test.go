package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
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
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/miniotest"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/store"
)

// These tests run supflow as separate processes, one per stage, against a
// real MinIO server and a real nats-server (embedded in the test process,
// reached over TCP), the way a deployment runs it.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// supflowBinary builds the command once per test binary.
func supflowBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "supflow-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "supflow")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// cluster is a MinIO server, a NATS server and a work directory with a
// pipeline.yaml pointing at both.
type cluster struct {
	t       *testing.T
	bin     string
	dir     string
	cfgPath string
	env     []string
	minio   *miniotest.Server
	nats    *bus.Embedded
	procs   []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
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

func newCluster(t *testing.T, yaml string) *cluster {
	t.Helper()
	bin := supflowBinary(t)
	m := miniotest.Start(t)
	dir := t.TempDir()
	nats, err := bus.StartEmbedded(context.Background(), bus.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats"), Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nats.Close() })
	ak, sk := m.Credentials()
	c := &cluster{t: t, bin: bin, dir: dir, minio: m, nats: nats, cfgPath: filepath.Join(dir, "pipeline.yaml"),
		env: append(os.Environ(), "SUPFLOW_S3_ACCESS_KEY="+ak, "SUPFLOW_S3_SECRET_KEY="+sk)}
	base := fmt.Sprintf(`run: {id: itest, seed: 3, work_dir: %q}
store: {embedded: false, endpoint: %q, bucket: itest}
bus: {embedded: false, url: %q, ack_wait: 3s, max_deliver: 3}
log: {format: text, level: info}
`, filepath.Join(dir, "work"), m.Endpoint(), nats.URL())
	if err := os.WriteFile(c.cfgPath, []byte(base+yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range c.procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			for _, p := range c.procs {
				t.Logf("--- %s output (tail):\n%s", p.name, tail(p.out.String(), 3000))
			}
		}
	})
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start runs `supflow args... --config pipeline.yaml` in the background.
func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "--config", c.cfgPath)...)
	cmd.Env = c.env
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	c.procs = append(c.procs, p)
	return p
}

// wait waits for p to exit and fails the test on a non-zero exit.
func (c *cluster) wait(p *proc, limit time.Duration) {
	c.t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // keep it readable for cleanup
		if err != nil {
			c.t.Fatalf("%s: %v\n%s", p.name, err, tail(p.out.String(), 4000))
		}
	case <-time.After(limit):
		c.t.Fatalf("%s did not finish within %v\n%s", p.name, limit, tail(p.out.String(), 4000))
	}
}

// waitFor polls p's output until re matches.
func waitFor(t *testing.T, p *proc, re *regexp.Regexp, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !re.MatchString(p.out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q within %v\n%s", p.name, re, limit, tail(p.out.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var epochLine = regexp.MustCompile(`msg="epoch trained" (?:\S+ )*?epoch=(\d+) samples=(\d+) dropped=(\d+) duplicates=(\d+)`)

// epochStats parses the trainer's per-epoch accounting lines.
func epochStats(out string) map[int][3]int {
	stats := map[int][3]int{}
	for _, m := range epochLine.FindAllStringSubmatch(out, -1) {
		e, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		u, _ := strconv.Atoi(m[4])
		stats[e] = [3]int{s, d, u}
	}
	return stats
}

const tinyModel = `
model: {widths: [4, 8, 8, 16], blocks: [1, 1, 1, 1], feat_dim: 32}
augment: {size: 28, flip_p: 0}
`

// TestIntegrationMultiProcessPipeline runs one process per stage with 2
// decode and 3 augment workers, kills one augment worker with SIGKILL in
// the middle of the first epoch, and checks that every sample of every
// epoch was trained exactly once and that the evaluation wrote a report.
func TestIntegrationMultiProcessPipeline(t *testing.T) {
	c := newCluster(t, tinyModel+`
dataset: {limit_train: 600, limit_test: 300}
decode: {gray: true}
train: {epochs: 2, batch_size: 50, knn_every: 1, knn_samples: 200, checkpoint_every: 1}
evaluate: {epochs: 5, knn_k: 20}
`)
	c.wait(c.start("ingest", "ingest"), 3*time.Minute)
	for i := range 2 {
		c.start(fmt.Sprintf("decode-%d", i), "decode")
	}
	var augs []*proc
	for i := range 3 {
		augs = append(augs, c.start(fmt.Sprintf("augment-%d", i), "augment"))
	}
	train := c.start("train", "train")
	eval := c.start("evaluate", "evaluate", "--wait")
	feed := c.start("feed", "feed")

	waitFor(t, train, regexp.MustCompile(`msg=step (?:\S+ )*?step=1 `), 2*time.Minute)
	if err := augs[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.wait(feed, 5*time.Minute)
	c.wait(train, 5*time.Minute)
	c.wait(eval, 5*time.Minute)

	stats := epochStats(train.out.String())
	for e := 1; e <= 2; e++ {
		if s := stats[e]; s[0] != 600 || s[1] != 0 {
			t.Errorf("epoch %d: trained %d distinct samples, %d dropped; want all 600 exactly once", e, s[0], s[1])
		}
	}
	t.Logf("epoch accounting (samples, dropped, duplicates removed): %v", stats)
	if !strings.Contains(eval.out.String(), "RESULT linear_top1=") {
		t.Errorf("evaluate printed no RESULT line:\n%s", eval.out.String())
	}
	f, err := os.Open(filepath.Join(c.dir, "work", "itest", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Linear == nil || !(float64(rep.Linear.Top1) > 0.15) || len(rep.KNN) != 2 || len(rep.Pretrain) == 0 {
		t.Errorf("report: linear %+v, %d kNN points, %d pretrain points", rep.Linear, len(rep.KNN), len(rep.Pretrain))
	}
}

// TestIntegrationBadImagesAreDeadLettered feeds a data set with corrupt,
// truncated, zero-byte, wrong-extension, oversized and missing objects and
// checks that each bad one is dead-lettered and the epoch still completes.
func TestIntegrationBadImagesAreDeadLettered(t *testing.T) {
	c := newCluster(t, tinyModel+`
dataset: {prefix: mixed}
decode: {gray: true, max_pixels: 20000}
train: {epochs: 1, batch_size: 16, knn_every: 0}
`)
	ak, sk := c.minio.Credentials()
	cl, err := store.New(store.Config{Endpoint: c.minio.Endpoint(), Bucket: "itest", AccessKey: ak, SecretKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	good := func(i, side int) []byte {
		img := image.NewGray(image.Rect(0, 0, side, side))
		for p := range img.Pix {
			img.Pix[p] = uint8(i*37 + p)
		}
		img.SetGray(0, 0, color.Gray{Y: uint8(i)})
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var entries []dataset.Entry
	put := func(key string, b []byte, upload bool) {
		label := len(entries) % 2
		sum := sha256.Sum256(b)
		entries = append(entries, dataset.Entry{Key: key, Label: int32(label), Class: strconv.Itoa(label), Split: "train",
			Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		if upload {
			if err := cl.Put(ctx, key, b, store.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 40 {
		put(fmt.Sprintf("mixed/train/%d/ok%d.png", i%2, i), good(i, 28), true)
	}
	p := good(1, 28)
	bad := map[string][]byte{
		"corrupt.png":   append([]byte("\x89PNG\r\n\x1a\nGARBAGE"), p[16:]...),
		"truncated.png": p[:len(p)/2],
		"empty.png":     {},
		"text.jpg":      []byte("this is not an image at all"),
		"huge.png":      good(2, 200), // 40000 pixels > decode.max_pixels
	}
	for name, b := range bad {
		put("mixed/train/0/"+name, b, true)
	}
	put("mixed/train/1/renamed.jpg", good(3, 28), true) // a PNG named .jpg decodes by content
	put("mixed/train/1/missing.png", good(4, 28), false)
	var man bytes.Buffer
	if err := dataset.WriteManifest(&man, entries); err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(dataset.Info{Source: "test", Format: "png", Height: 28, Width: 28, Channels: 1,
		Mean: []float64{0.5}, Std: []float64{0.25}, StatsSplit: "train", Counts: map[string]int{"train": len(entries)}, Classes: 2})
	for key, b := range map[string][]byte{dataset.ManifestKey("mixed"): man.Bytes(), dataset.ClassesKey("mixed"): []byte(`["0","1"]`),
		dataset.InfoKey("mixed"): info} {
		if err := cl.Put(ctx, key, b, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c.start("decode", "decode")
	c.start("augment", "augment")
	train := c.start("train", "train")
	c.wait(c.start("feed", "feed"), 2*time.Minute)
	c.wait(train, 3*time.Minute)

	out := train.out.String()
	stats := epochStats(out)
	if s := stats[1]; s[0] != 41 || s[1] != 6 {
		t.Errorf("epoch 1: %d samples trained, %d dropped; want 41 trained and 6 dead-lettered", s[0], s[1])
	}
	for _, want := range []string{"corrupt.png", "truncated.png", "empty.png", "text.jpg", "huge.png", "missing.png"} {
		if !strings.Contains(out, want) {
			t.Errorf("train log does not name dead-lettered %s", want)
		}
	}
}

// TestBadInputExits checks that each kind of bad start gives one clear line
// of error and a non-zero exit.
func TestIntegrationBadInputExits(t *testing.T) {
	c := newCluster(t, tinyModel+"decode: {gray: true}\ntrain: {epochs: 1}\n")
	cases := []struct {
		name string
		args []string
		env  []string
		want string
		code int
	}{
		{"bucket without manifest", []string{"train"}, nil, "run `supflow ingest` first", 1},
		{"evaluation before pretraining", []string{"evaluate"}, nil, "has not finished", 1},
		{"wrong NATS URL", []string{"decode"}, []string{"SUPFLOW_BUS_URL=nats://127.0.0.1:1"}, "127.0.0.1:1", 1},
		{"wrong S3 endpoint", []string{"ingest"}, []string{"SUPFLOW_STORE_ENDPOINT=127.0.0.1:1"}, "127.0.0.1:1", 1},
		{"invalid value", []string{"train", "--set", "train.batch_size=1"}, nil, "train.batch_size", 2},
		{"unknown key", []string{"decode", "--set", "decode.bogus=1"}, nil, "decode.bogus", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(c.bin, append(tc.args, "--config", c.cfgPath)...)
			cmd.Env = append(append([]string{}, c.env...), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			cmd.Stdout = io.Discard
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if err == nil || code != tc.code {
				t.Fatalf("exit code %d (err %v), want %d\n%s", code, err, tc.code, stderr.String())
			}
			last := lastErrorLine(stderr.String())
			if !strings.Contains(last, tc.want) {
				t.Errorf("error line %q does not mention %q\nstderr:\n%s", last, tc.want, stderr.String())
			}
		})
	}
}

// TestIntegrationCheckpointForAnotherModel evaluates a checkpoint with a
// configuration of a different model.
func TestIntegrationCheckpointForAnotherModel(t *testing.T) {
	c := newCluster(t, tinyModel+`
dataset: {limit_train: 64, limit_test: 32}
decode: {gray: true}
train: {epochs: 1, batch_size: 32, knn_every: 0}
`)
	c.wait(c.start("ingest", "ingest"), 3*time.Minute)
	c.start("decode", "decode")
	c.start("augment", "augment")
	train := c.start("train", "train")
	c.wait(c.start("feed", "feed"), 2*time.Minute)
	c.wait(train, 3*time.Minute)
	cmd := exec.Command(c.bin, "evaluate", "--config", c.cfgPath, "--checkpoint", "runs/itest/checkpoints/last.safetensors",
		"--set", "model.widths=4,8,8,32")
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("evaluate accepted a checkpoint of another model")
	}
	if last := lastErrorLine(stderr.String()); !strings.Contains(last, "encoder.layer4") {
		t.Errorf("error %q does not name the mismatched tensor", last)
	}
}

// lastErrorLine is the line the command printed about its failure.
func lastErrorLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "supflow ") {
			last = sc.Text()
		}
	}
	return last
}

// TestIntegrationSignalStopsCleanly sends SIGTERM to idle stage processes:
// each drains and exits 0 (within the 10 s router close timeout even when
// the signal lands while the subscriptions are still starting).
func TestIntegrationSignalStopsCleanly(t *testing.T) {
	c := newCluster(t, tinyModel)
	for _, stage := range []string{"decode", "augment"} {
		p := c.start(stage, stage)
		waitFor(t, p, regexp.MustCompile(`msg="stage running"`), time.Minute)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		c.wait(p, 30*time.Second)
	}
}

// TestIntegrationResumeAfterKill kills `supflow run` with SIGKILL after its
// first checkpoint and resumes it: training continues at the next epoch,
// every later epoch is trained exactly once, and the evaluation completes.
func TestIntegrationResumeAfterKill(t *testing.T) {
	c := newCluster(t, tinyModel+`
dataset: {limit_train: 300, limit_test: 100}
decode: {gray: true}
train: {epochs: 3, batch_size: 50, knn_every: 0, checkpoint_every: 1}
evaluate: {epochs: 2, knn_k: 10}
`)
	first := c.start("run", "run")
	waitFor(t, first, regexp.MustCompile(`msg="checkpoint saved" (?:\S+ )*?epoch=1 `), 3*time.Minute)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.done <- nil
	second := c.start("run --resume", "run", "--resume")
	c.wait(second, 4*time.Minute)
	out := second.out.String()
	if !regexp.MustCompile(`msg=resumed (?:\S+ )*?epoch=1 step=6`).MatchString(out) {
		t.Errorf("no resume from epoch 1, step 6 in the log")
	}
	stats := epochStats(out)
	if _, again := stats[1]; again {
		t.Errorf("epoch 1 was trained again after the resume")
	}
	for e := 2; e <= 3; e++ {
		if s := stats[e]; s[0] != 300 || s[1] != 0 {
			t.Errorf("epoch %d after resume: %d samples, %d dropped; want 300, 0", e, s[0], s[1])
		}
	}
	if !strings.Contains(out, "RESULT linear_top1=") {
		t.Error("the resumed run printed no RESULT line")
	}
}
