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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/report"
	"github.com/supflow/supflow/store"
)

// These tests run supflow as separate processes, one per stage, against a
// real MinIO server and a real nats-server (internal/clustertest), the way a
// deployment runs it.

const tinyModel = `
model: {widths: [4, 8, 8, 16], blocks: [1, 1, 1, 1], feat_dim: 32}
augment: {size: 28, flip_p: 0}
`

// TestIntegrationMultiProcessPipeline runs one process per stage with 2
// decode and 3 augment workers, kills one augment worker with SIGKILL in
// the middle of the first epoch, and checks that every sample of every
// epoch was trained exactly once and that the evaluation wrote a report.
func TestIntegrationMultiProcessPipeline(t *testing.T) {
	c := clustertest.New(t, tinyModel+`
dataset: {limit_train: 600, limit_test: 300}
decode: {gray: true}
train: {epochs: 2, batch_size: 50, knn_every: 1, knn_samples: 200, checkpoint_every: 1}
evaluate: {epochs: 5, knn_k: 20}
`)
	c.Wait(c.Start("ingest", "ingest"), 3*time.Minute)
	for i := range 2 {
		c.Start(fmt.Sprintf("decode-%d", i), "decode")
	}
	var augs []*clustertest.Proc
	for i := range 3 {
		augs = append(augs, c.Start(fmt.Sprintf("augment-%d", i), "augment"))
	}
	train := c.Start("train", "train")
	eval := c.Start("evaluate", "evaluate", "--wait")
	feed := c.Start("feed", "feed")

	train.WaitFor(clustertest.LogLine("step", "step", 1), 2*time.Minute)
	augs[0].Signal(syscall.SIGKILL)
	c.Wait(feed, 5*time.Minute)
	c.Wait(train, 5*time.Minute)
	c.Wait(eval, 5*time.Minute)

	stats := clustertest.EpochStats(train.Output())
	for e := 1; e <= 2; e++ {
		if s := stats[e]; s.Samples != 600 || s.Dropped != 0 {
			t.Errorf("epoch %d: trained %d distinct samples, %d dropped; want all 600 exactly once", e, s.Samples, s.Dropped)
		}
	}
	t.Logf("epoch accounting (samples, dropped, duplicates removed): %v", stats)
	if !strings.Contains(eval.Output(), "RESULT linear_top1=") {
		t.Errorf("evaluate printed no RESULT line:\n%s", eval.Output())
	}
	f, err := os.Open(filepath.Join(c.WorkDir(), clustertest.RunID, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Linear == nil || len(rep.KNN) != 2 || len(rep.Pretrain) == 0 {
		t.Fatalf("report: linear %+v, %d kNN points, %d pretrain points", rep.Linear, len(rep.KNN), len(rep.Pretrain))
	}
	checkLearned(t, epochMeanLoss(t, train.Output(), 1), float64(rep.Linear.Top1), max(float64(rep.KNN[0].Top1), float64(rep.KNN[1].Top1)))
}

// checkLearned holds a run of TestIntegrationMultiProcessPipeline to the
// band recorded from runs of this configuration and seed, each bound about
// three standard deviations of the spread seen beyond its edge; and below
// it, what a trainer that does not learn (lr 1e-8: the encoder stays at its
// initialization) scores in three runs. Recorded again on 2026-12-06 from
// 19 runs on pull consumers (the batches' composition changed with them:
// one CI run's best kNN top-1 fell to 0.31, under the former band's 0.33):
// the epoch 1 loss is the bound that tells learning from not learning; the
// kNN and linear bounds catch a broken evaluation, no longer a trainer that
// does not learn (0.32 and 0.257 lie inside them).
// Re-record it when a deliberate change to training moves it.
//
//	                          learning, 19 runs    not learning   band
//	epoch 1 mean SupCon loss  6.514 - 6.539        6.572 - 6.577  [6.45, 6.555]
//	best kNN top-1 (2 epochs) 0.31 - 0.41          0.32           [0.26, 0.50]
//	linear top-1              0.277 - 0.343        0.257          [0.24, 0.40]
//
// The loss falling from epoch 1 to 2 is not asserted: it did in every
// learning run (by 0.1 to 1.7%), but by as little in runs that did not
// learn. Accuracies depend on the batches (the augment worker killed mid
// epoch reorders them), not on time, so a loaded machine does not move
// them.
func checkLearned(t *testing.T, epoch1Loss, linearTop1, bestKNN float64) {
	t.Helper()
	t.Logf("learning: epoch 1 mean loss %.4f, best kNN top-1 %.3f, linear top-1 %.4f", epoch1Loss, bestKNN, linearTop1)
	if !(epoch1Loss >= 6.45 && epoch1Loss <= 6.555) {
		t.Errorf("epoch 1 mean loss %.4f outside the recorded band [6.45, 6.555] (6.514-6.539 learning, 6.57 without)", epoch1Loss)
	}
	if !(bestKNN >= 0.26 && bestKNN <= 0.50) {
		t.Errorf("best kNN top-1 %.3f outside the recorded band [0.26, 0.50] (0.31-0.41 learning)", bestKNN)
	}
	if !(linearTop1 >= 0.24 && linearTop1 <= 0.40) {
		t.Errorf("linear top-1 %.4f outside the recorded band [0.24, 0.40] (0.277-0.343 learning)", linearTop1)
	}
}

// epochMeanLoss reads the mean loss of epoch e from the trainer's "epoch
// trained" line.
func epochMeanLoss(t *testing.T, out string, e int) float64 {
	t.Helper()
	m := regexp.MustCompile(`msg="epoch trained" (?:\S+ )*?epoch=` + strconv.Itoa(e) + ` (?:\S+ )*?mean_loss=(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no epoch trained line for epoch %d", e)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestIntegrationBadImagesAreDeadLettered feeds a data set with corrupt,
// truncated, zero-byte, wrong-extension, oversized and missing objects and
// checks that each bad one is dead-lettered alone, naming its key, and the
// epoch still completes with every good sample exactly once: with separate
// decode and augment processes, with a fused one (decode --augment, no
// images edge), and with both on the same streams.
func TestIntegrationBadImagesAreDeadLettered(t *testing.T) {
	for _, c := range []struct {
		name    string
		workers [][]string
	}{
		{"separate", [][]string{{"decode"}, {"augment"}}},
		{"fused", [][]string{{"decode", "--augment"}}},
		{"fused beside separate", [][]string{{"decode", "--augment"}, {"decode"}, {"augment"}}},
	} {
		t.Run(c.name, func(t *testing.T) { badImagesDeadLettered(t, c.workers) })
	}
}

func badImagesDeadLettered(t *testing.T, workers [][]string) {
	c := clustertest.New(t, tinyModel+`
dataset: {prefix: mixed}
decode: {gray: true, max_pixels: 20000}
train: {epochs: 1, batch_size: 16, knn_every: 0}
`)
	cl := c.Store()
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
	for i, w := range workers {
		c.Start(fmt.Sprintf("%s-%d", w[0], i), w...)
	}
	train := c.Start("train", "train")
	c.Wait(c.Start("feed", "feed"), 2*time.Minute)
	c.Wait(train, 3*time.Minute)

	out := train.Output()
	stats := clustertest.EpochStats(out)
	if s := stats[1]; s.Samples != 41 || s.Dropped != 6 {
		t.Errorf("epoch 1: %d samples trained, %d dropped; want 41 trained and 6 dead-lettered", s.Samples, s.Dropped)
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
	c := clustertest.New(t, tinyModel+"decode: {gray: true}\ntrain: {epochs: 1}\n")
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
			cmd := c.Command(tc.args...)
			cmd.Env = append(cmd.Env, tc.env...)
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
	c := clustertest.New(t, tinyModel+`
dataset: {limit_train: 64, limit_test: 32}
decode: {gray: true}
train: {epochs: 1, batch_size: 32, knn_every: 0}
`)
	c.Wait(c.Start("ingest", "ingest"), 3*time.Minute)
	c.Start("decode", "decode")
	c.Start("augment", "augment")
	train := c.Start("train", "train")
	c.Wait(c.Start("feed", "feed"), 2*time.Minute)
	c.Wait(train, 3*time.Minute)
	cmd := c.Command("evaluate", "--checkpoint", "runs/itest/checkpoints/last.safetensors", "--set", "model.widths=4,8,8,32")
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

// TestIntegrationResumeAfterKill kills `supflow run` with SIGKILL after its
// first checkpoint and resumes it: training continues at the next epoch,
// every later epoch is trained exactly once, and the evaluation completes.
func TestIntegrationResumeAfterKill(t *testing.T) {
	c := clustertest.New(t, tinyModel+`
dataset: {limit_train: 300, limit_test: 100}
decode: {gray: true}
train: {epochs: 3, batch_size: 50, knn_every: 0, checkpoint_every: 1}
evaluate: {epochs: 2, knn_k: 10}
`)
	first := c.Start("run", "run")
	first.WaitFor(regexp.MustCompile(`msg="checkpoint saved" (?:\S+ )*?epoch=1 `), 3*time.Minute)
	first.Kill()
	second := c.Start("run --resume", "run", "--resume")
	c.Wait(second, 4*time.Minute)
	out := second.Output()
	if !regexp.MustCompile(`msg=resumed (?:\S+ )*?epoch=1 step=6`).MatchString(out) {
		t.Errorf("no resume from epoch 1, step 6 in the log")
	}
	stats := clustertest.EpochStats(out)
	if _, again := stats[1]; again {
		t.Errorf("epoch 1 was trained again after the resume")
	}
	for e := 2; e <= 3; e++ {
		if s := stats[e]; s.Samples != 300 || s.Dropped != 0 {
			t.Errorf("epoch %d after resume: %d samples, %d dropped; want 300, 0", e, s.Samples, s.Dropped)
		}
	}
	if !strings.Contains(out, "RESULT linear_top1=") {
		t.Error("the resumed run printed no RESULT line")
	}
}

// TestIntegrationRunFused runs `supflow run` with decode.augment: one
// fused route decodes and augments, every sample of every epoch is trained
// exactly once, the evaluation prints RESULT, and no image crossed the
// images edge, which stays provisioned (as for `supflow decode --augment`)
// and which `supflow status` shows empty, with no worker bound.
func TestIntegrationRunFused(t *testing.T) {
	c := clustertest.New(t, tinyModel+`
dataset: {limit_train: 200, limit_test: 100}
decode: {gray: true, augment: true}
train: {epochs: 2, batch_size: 50, knn_every: 0, checkpoint_every: 1}
evaluate: {epochs: 2, knn_k: 10}
`)
	run := c.Start("run", "run")
	c.Wait(run, 4*time.Minute)
	out := run.Output()
	if !regexp.MustCompile(`msg="workers running" (?:\S+ )*?routes=decode\+augment\n`).MatchString(out) {
		t.Errorf("run did not mount the fused route alone")
	}
	stats := clustertest.EpochStats(out)
	for e := 1; e <= 2; e++ {
		if s := stats[e]; s.Samples != 200 || s.Dropped != 0 || s.Duplicates != 0 {
			t.Errorf("epoch %d: %d samples, %d dropped, %d duplicates; want all 200 exactly once", e, s.Samples, s.Dropped, s.Duplicates)
		}
	}
	if !strings.Contains(out, "RESULT linear_top1=") {
		t.Error("no RESULT line")
	}

	nc, err := nats.Connect(c.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for topic, carried := range map[string]bool{messages.TopicDecodeTasks: true, messages.TopicImages: false, messages.TopicViews: true} {
		st, err := js.Stream(t.Context(), topic)
		if err != nil {
			t.Fatalf("stream %s: %v", topic, err)
		}
		if n := st.CachedInfo().State.LastSeq; (n > 0) != carried {
			t.Errorf("stream %s: %d messages published, want carried %v", topic, n, carried)
		}
	}
	status, err := c.Command("status").CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, status)
	}
	if !regexp.MustCompile(`(?m)^supflow_images +file +0/\d+ +augment +0 +0/\d+ +0 +0 +3s$`).Match(status) {
		t.Errorf("status does not show the images edge empty and unbound:\n%s", status)
	}
}

// TestIntegrationRunViewsOverPayload trains with a batch larger than what
// the trainer's window holds if it counts bus.batch view groups to a
// message: 224 px gray pairs are about 100 KB, 10 to a 1 MiB message, not 64.
// The window must count messages as packed, or the trainer waits for a
// batch the server never delivers (224 px pairs, 3 to a message, stalled
// configs/imagenet-folder.yaml's batch of 256 this way).
func TestIntegrationRunViewsOverPayload(t *testing.T) {
	c := clustertest.New(t, `
model: {widths: [4, 8, 8, 16], blocks: [1, 1, 1, 1], feat_dim: 32}
augment: {size: 224, flip_p: 0}
dataset: {limit_train: 200, limit_test: 100}
decode: {gray: true}
train: {epochs: 1, batch_size: 64, knn_every: 0, checkpoint_every: 1}
evaluate: {epochs: 1, knn_k: 10}
`)
	run := c.StartEnv("run", []string{"SUPFLOW_BUS_MAX_ACK_PENDING=1"}, "run")
	c.Wait(run, 4*time.Minute)
	if s := clustertest.EpochStats(run.Output())[1]; s.Samples != 200 || s.Dropped != 0 || s.Duplicates != 0 {
		t.Errorf("epoch 1: %d samples, %d dropped, %d duplicates; want all 200 exactly once", s.Samples, s.Dropped, s.Duplicates)
	}
}

// TestIntegrationStatus reads the edges before anything provisioned them
// and with an idle decode worker waiting for tasks.
func TestIntegrationStatus(t *testing.T) {
	c := clustertest.New(t, tinyModel)
	status := func() string {
		t.Helper()
		out, err := c.Command("status").CombinedOutput()
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := status(); strings.Count(out, "stream missing (not provisioned)") != 3 {
		t.Fatalf("before provisioning:\n%s", out)
	}
	dec := c.Start("decode", "decode")
	dec.WaitFor(regexp.MustCompile(`msg="stage running"`), time.Minute)
	wants := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^supflow_decode_tasks +file +0/\d+ +decode +0 +0/\d+ +0 +1 +3s$`),
		regexp.MustCompile(`(?m)^supflow_images +file +0/\d+ +augment +0 +0/\d+ +0 +0 +3s$`),
		regexp.MustCompile(`(?m)^supflow_views +file +0/\d+ +train +0 +0/\d+ +0 +0 +3s$`),
	}
	// The idle worker has one pull request open, and opens the next as
	// each expires (every second): a status read between the two sees
	// none, so a few reads are allowed.
	out := status()
	for range 10 {
		if wants[0].MatchString(out) {
			break
		}
		out = status()
	}
	for _, want := range wants {
		if !want.MatchString(out) {
			t.Errorf("status does not match %s:\n%s", want, out)
		}
	}
}
