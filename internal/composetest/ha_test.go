//go:build compose

package composetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/internal/faulttest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/store"
)

// haJob is the HA job: the compose pipeline cut to what 2 shared cores run
// in minutes (2000 training digits, one epoch per fault and one without,
// a short evaluation), with ack_wait short enough that the augment
// disconnection outlasts it. The trainer logs every step, so the test
// sees an epoch's first one, where its fault is injected, with the other
// 19 still to run.
const haJob = `SUPFLOW_DATASET_LIMIT_TRAIN=2000
SUPFLOW_DATASET_LIMIT_TEST=300
SUPFLOW_TRAIN_EPOCHS=6
SUPFLOW_TRAIN_BATCH_SIZE=100
SUPFLOW_TRAIN_LOG_EVERY=1
SUPFLOW_TRAIN_KNN_EVERY=0
SUPFLOW_EVALUATE_EPOCHS=2
SUPFLOW_BUS_ACK_WAIT=5s
`

// ackWait is haJob's bus.ack_wait.
const ackWait = 5 * time.Second

// haFault is one epoch's fault: inject runs at the epoch's first step (at
// its start, before any step, with atStart) and returns what it did;
// without inject the epoch runs unfaulted.
type haFault struct {
	name    string
	atStart bool
	inject  func() string
}

// TestIntegrationComposeHA runs deploy/docker-compose.yml merged with
// docker-compose.ha.yml (3 NATS nodes with R3 streams, 4 MinIO nodes) with
// one augment worker and injects one container fault per epoch, at the
// epoch's first step: the NATS node leading the views
// stream stopped (and started again once the epoch is trained), a MinIO
// node stopped (likewise), augment scaled 1 -> 4 -> 1, the augment
// container disconnected from the network for longer than ack_wait, the
// trainer's process killed (Docker restarts it, it resumes from the last
// checkpoint and announces its start, and the running feeder feeds the
// resumed epoch again, since the samples the killed trainer stepped after
// that checkpoint were acknowledged and are gone from the stream). The
// sixth epoch has none. The feeder is frozen (docker pause) from when it
// has fed an epoch until that epoch's fault is undone, so no epoch passes
// unfaulted on a fast machine. Each epoch's exact trained and dropped id
// sets are compared with the manifest (0 lost, 0 trained twice), and the
// run must end with evaluate's RESULT. With SUPFLOW_RELIABILITY_DOC set,
// the table goes into that document.
func TestIntegrationComposeHA(t *testing.T) {
	ctx, p, begin := startJob(t, []string{"docker-compose.yml", "docker-compose.ha.yml"}, haJob, "--scale", "augment=1")
	env := readEnv(t, p)
	h := &ha{t: t, ctx: ctx, p: p}
	h.train, h.feeder = h.one("train"), h.one("feeder")
	// Runs before startJob's clean-up: a failure between pause and
	// unpause must not leave `down` a frozen container.
	t.Cleanup(func() { Docker(context.Background(), "unpause", h.feeder) })

	entries := h.manifest(env)
	var rows []faulttest.Row
	faults := []haFault{
		{"NATS node loss", false, func() string {
			leader := h.viewsLeader(env)
			h.docker("stop", h.one(leader))
			h.waitEpoch(1)
			h.docker("start", h.one(leader))
			return "stopped " + leader + ", the views stream's leader, until the epoch was trained; started again"
		}},
		{"MinIO node loss", false, func() string {
			h.docker("stop", h.one("minio3"))
			h.waitEpoch(2)
			h.docker("start", h.one("minio3"))
			return "stopped minio3 (of 4) until the epoch was trained; started again"
		}},
		{"augment scaled 1 -> 4 -> 1", false, func() string {
			h.compose("up", "-d", "--no-deps", "--scale", "augment=4", "augment")
			h.compose("up", "-d", "--no-deps", "--scale", "augment=1", "augment")
			return "scaled to 4 at the epoch's first step, back to 1 as soon as the 4 ran"
		}},
		// At the epoch's start, while the one augment worker holds the
		// epoch's first images.
		{"augment disconnected", true, func() string {
			c, net := h.one("augment"), p.Name+"_default"
			h.docker("network", "disconnect", net, c)
			time.Sleep(ackWait + 5*time.Second) // the fault is the absence itself
			h.docker("network", "connect", net, c)
			return fmt.Sprintf("the augment container off the network for %s (ack_wait %s), then reconnected", ackWait+5*time.Second, ackWait)
		}},
		{"trainer killed", false, func() string {
			resumes := len(resumedRe.FindAllString(h.logs(), -1))
			pid := h.inspect(h.train, "{{.State.Pid}}")
			if n, err := strconv.Atoi(pid); err != nil || n <= 0 {
				t.Fatalf("trainer container not running (pid %q)", pid)
			}
			if out, err := exec.Command("kill", "-KILL", pid).CombinedOutput(); err != nil {
				t.Fatalf("kill %s: %v %s", pid, err, out)
			}
			// Docker restarts the container (train --resume); its
			// trainer_started event makes the running feeder feed the
			// resumed epoch again, nothing is restarted by hand.
			var m []string
			h.poll("the trainer's resume", func() bool {
				logs := h.logs()
				if strings.Contains(logs, `msg="pretraining done"`) {
					t.Fatal("pretraining ended before the trainer was killed")
				}
				all := resumedRe.FindAllStringSubmatch(logs, -1)
				if len(all) > resumes {
					m = all[len(all)-1]
				}
				return m != nil
			})
			saved, _ := strconv.Atoi(m[1])
			return fmt.Sprintf("SIGKILL to the trainer process; Docker restarted the container (train --resume from epoch %d's checkpoint); the running feeder fed epoch %d again on the new trainer's start", saved, saved+1)
		}},
		{"none", false, nil},
	}
	for i, f := range faults {
		e := i + 1
		if f.inject == nil {
			rows = append(rows, faulttest.Row{Case: fmt.Sprintf("%d. %s", e, f.name), Injected: "no fault: the epoch after them", Reports: 1})
			continue
		}
		if e > 1 {
			h.waitEpoch(e - 1)
		}
		// The feeder is paused (frozen) from the moment it has fed epoch e
		// until the fault is undone: the next epoch cannot start, and be
		// trained, while a slow fault (compose's scaling) is undone, however
		// fast the machine. Its events come through an ordered consumer,
		// which resumes where it was.
		h.waitFed(e)
		h.docker("pause", h.feeder)
		if !f.atStart {
			h.waitStepOf(e)
		}
		if h.epochTrained(e) {
			t.Fatalf("epoch %d was trained before its fault (%s) began", e, f.name)
		}
		start := time.Now()
		what := f.inject()
		// Whether the fault was undone within the epoch: one that
		// outlasts it still proves no loss, and the table says so.
		switch {
		case h.epochTrained(e):
			what += fmt.Sprintf("; the epoch was trained before the fault was undone, %.0f s after it began", time.Since(start).Seconds())
		default:
			what += fmt.Sprintf("; undone %.0f s after it began, within the epoch", time.Since(start).Seconds())
		}
		h.docker("unpause", h.feeder)
		t.Logf("epoch %d: %s", e, what)
		rows = append(rows, faulttest.Row{Case: fmt.Sprintf("%d. %s", e, f.name), Injected: what, Reports: 1})
	}

	eval := waitEvaluate(ctx, t, p)
	total := time.Since(begin).Round(time.Second)
	logs, err := Docker(ctx, "logs", eval)
	if err != nil {
		t.Fatal(err)
	}
	if m := resultLine.FindString(logs); m == "" {
		t.Errorf("evaluate's log has no RESULT line:\n%s", logs)
	} else {
		t.Log(m)
	}
	stats := clustertest.EpochStats(h.logs())
	for i := range rows {
		e := i + 1
		s, ok := stats[e]
		if !ok {
			rows[i].Account = faulttest.Account{Expected: len(entries), Lost: len(entries)}
			rows[i].Detail = "epoch never reported as trained"
			t.Errorf("epoch %d never reported as trained", e)
			continue
		}
		a := faulttest.Tally(len(entries), nil, s.TrainedIDs, s.DroppedIDs)
		rows[i].Account = a
		rows[i].Pass = a.OK() && s.Samples == len(s.TrainedIDs)
		rows[i].Detail = fmt.Sprintf("trainer removed %d redelivered samples", s.Duplicates)
		if !rows[i].Pass {
			t.Errorf("epoch %d: %+v (trained %d, dropped %v)", e, a, s.Samples, s.DroppedIDs)
		}
	}
	if n := h.inspect(h.train, "{{.RestartCount}}"); n != "1" {
		t.Errorf("trainer restarts = %s, want 1 (the kill)", n)
	}
	// Stages that exited on a fault and were restarted (on-failure).
	cs, err := containers(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var restarts []string
	for _, c := range cs {
		if c.RestartCount > 0 {
			restarts = append(restarts, fmt.Sprintf("%s %d", c.service(), c.RestartCount))
		}
	}
	slices.Sort(restarts)
	t.Logf("container restarts over the run: %v", restarts)
	var b bytes.Buffer
	if err := faulttest.WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("HA fault cases, %s:\n%s", total, b.String())
	if path := os.Getenv(faulttest.EnvDoc); path != "" && !t.Failed() {
		if err := faulttest.WriteSection(path, "compose-ha", haDoc(b.String(), total, strings.Join(restarts, ", "))); err != nil {
			t.Error(err)
		}
	}
}

// ha drives one HA project.
type ha struct {
	t      *testing.T
	ctx    context.Context
	p      *Project
	train  string // the train container's ID (a restart keeps it)
	feeder string // the feeder container's ID
}

// one returns the ID of the project's one container of service.
func (h *ha) one(service string) string {
	h.t.Helper()
	cs, err := containers(h.ctx, h.p)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range cs {
		if c.service() == service {
			return c.ID
		}
	}
	h.t.Fatalf("no container of service %s", service)
	return ""
}

func (h *ha) docker(args ...string) {
	h.t.Helper()
	if out, err := Docker(h.ctx, args...); err != nil {
		h.t.Fatalf("%v\n%s", err, out)
	}
}

func (h *ha) compose(args ...string) {
	h.t.Helper()
	if out, err := h.p.Output(h.ctx, args...); err != nil {
		h.t.Fatalf("%v\n%s", err, out)
	}
}

func (h *ha) inspect(id, format string) string {
	h.t.Helper()
	out, err := Docker(h.ctx, "inspect", "-f", format, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// logs is the trainer container's log, every run of it.
func (h *ha) logs() string {
	h.t.Helper()
	return h.containerLogs(h.train)
}

// containerLogs is a container's log, every run of it.
func (h *ha) containerLogs(id string) string {
	h.t.Helper()
	cmd := exec.CommandContext(h.ctx, "docker", "logs", id)
	out, err := cmd.CombinedOutput() // supflow logs to stderr
	if err != nil {
		h.t.Fatalf("docker logs: %v", err)
	}
	return string(out)
}

var resumedRe = regexp.MustCompile(`msg=resumed (?:\S+ )*?epoch=(\d+) `)

// waitStepOf polls the trainer's log until it has logged a step of epoch e
// (haJob logs every one), however long ago: an epoch that ended before
// the poll saw it shows up as the epoch trained, not as a wait that never
// ends.
func (h *ha) waitStepOf(e int) {
	h.t.Helper()
	step := clustertest.LogLine("step", "epoch", e)
	h.poll(fmt.Sprintf("a step of epoch %d", e), func() bool {
		logs := h.logs()
		if step.MatchString(logs) {
			return true
		}
		if strings.Contains(logs, `msg="pretraining done"`) {
			h.t.Fatalf("pretraining ended before a step of epoch %d", e)
		}
		return false
	})
}

// waitFed polls the feeder's log until it has fed epoch e (every task on
// the bus), at least once: a restarted trainer's epoch is fed again.
func (h *ha) waitFed(e int) {
	h.t.Helper()
	fed := clustertest.LogLine("epoch fed", "epoch", e)
	h.poll(fmt.Sprintf("epoch %d fed", e), func() bool { return fed.MatchString(h.containerLogs(h.feeder)) })
}

// epochTrained reports whether the trainer's log says epoch e is trained.
func (h *ha) epochTrained(e int) bool {
	return clustertest.LogLine("epoch trained", "epoch", e).MatchString(h.logs())
}

// waitEpoch polls the trainer's log until epoch e is trained.
func (h *ha) waitEpoch(e int) {
	h.t.Helper()
	h.poll(fmt.Sprintf("epoch %d trained", e), func() bool { return h.epochTrained(e) })
}

func (h *ha) poll(what string, done func() bool) {
	h.t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-h.ctx.Done():
			h.t.Fatalf("waiting for %s: %v", what, h.ctx.Err())
		case <-tick.C:
		}
	}
}

// ip is the address of a service's container on the project network,
// which the test reaches from the host (no port is published).
func (h *ha) ip(service string) string {
	return h.inspect(h.one(service), `{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}`)
}

// manifest reads the training split back from the cluster's bucket.
func (h *ha) manifest(env map[string]string) []dataset.Entry {
	h.t.Helper()
	// ingest finished before the trainer started
	h.waitStepOf(1)
	st, err := store.New(store.Config{Endpoint: h.ip("minio") + ":9000", Bucket: "supflow",
		AccessKey: env["SUPFLOW_S3_ACCESS_KEY"], SecretKey: env["SUPFLOW_S3_SECRET_KEY"]})
	if err != nil {
		h.t.Fatal(err)
	}
	d, err := dataset.Load(h.ctx, st, "mnist")
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Split("train")
}

// viewsLeader asks JetStream which server leads the views stream and
// returns its service (server nats1 is service nats).
func (h *ha) viewsLeader(env map[string]string) string {
	h.t.Helper()
	nc, err := nats.Connect("nats://"+h.ip("nats2")+":4222", nats.UserInfo(env["SUPFLOW_NATS_USER"], env["SUPFLOW_NATS_PASSWORD"]))
	if err != nil {
		h.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := js.Stream(h.ctx, messages.TopicViews)
	if err != nil {
		h.t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		h.t.Fatalf("views stream: %d replicas, cluster %+v; want R3", info.Config.Replicas, info.Cluster)
	}
	if info.Cluster.Leader == "nats1" {
		return "nats"
	}
	return info.Cluster.Leader
}

// readEnv reads the project's .env.
func readEnv(t *testing.T, p *Project) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.Dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	return env
}

// haDoc is the section of docs/reliability.md: the table and where it ran.
func haDoc(table string, total time.Duration, restarts string) []byte {
	var b strings.Builder
	b.WriteString(`## Container faults in the HA deployment

Generated by ` + "`make test-compose-ha`" + ` with ` + faulttest.EnvDoc + ` (internal/composetest,
TestIntegrationComposeHA); do not edit by hand. One run of
deploy/docker-compose.yml merged with deploy/docker-compose.ha.yml: 3 NATS
nodes (every stream at 3 replicas), 4 MinIO nodes (one erasure set), one
augment worker, 2000 training digits in 20 steps an epoch, 6 epochs; one
fault per epoch, injected at the epoch's first optimizer step (the
disconnection at the epoch's start), each epoch's trained and
dead-lettered id sets (the trainer's ` + "`epoch trained`" + ` line, across its restart) compared
with the manifest as above.

`)
	b.WriteString(table)
	fmt.Fprintf(&b, "\nWhole test (image build, up, 6 epochs, evaluation): %s. Containers Docker restarted (restart: on-failure) over the run: %s.\n\n", total, restarts)
	b.WriteString("| | |\n|---|---|\n")
	docker := ""
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output(); err == nil {
		docker = strings.TrimSpace(string(out))
	}
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	for _, kv := range [][2]string{
		{"date", time.Now().UTC().Format("2006-01-02 15:04 MST")},
		{"machine", fmt.Sprintf("%s/%s, %d CPUs, load average at the end %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), load)},
		{"Docker engine", docker},
		{"command", "`" + faulttest.EnvDoc + "=$PWD/docs/reliability.md make test-compose-ha`"},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
	}
	return []byte(b.String())
}
