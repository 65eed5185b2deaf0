package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/supflow/supflow/messages"
)

// Soak settings, from the environment; TestSoak runs only when
// SOAK_DURATION is set (make soak), never in make test.
const (
	envSoakDuration = "SOAK_DURATION" // e.g. 30m
	envSoakInterval = "SOAK_INTERVAL" // between samples; default duration/20
)

// Tolerances after the warm-up (the first third of the run): a process's
// RSS may exceed its value at the end of the warm-up by rssSlack, a work
// queue may hold up to two epochs of messages, and the events stream grows
// by a few events per epoch (Limits retention, 7 days), at most
// eventBytesPerEpoch on average.
const (
	rssSlackFrac       = 0.25
	rssSlackBytes      = 24 << 20
	eventBytesPerEpoch = 1024
	soakSamples        = 200 // per epoch
)

// TestSoak trains a tiny model in continuous epochs through separate
// processes for SOAK_DURATION, sampling the RSS of every process (the
// stages, MinIO, and the test process, which runs nats-server; also its live
// heap after a collection) and the size
// of every JetStream stream, prints the figures, and fails if they grow
// beyond the tolerances above after the warm-up. Every epoch must be exact.
func TestSoak(t *testing.T) {
	d := os.Getenv(envSoakDuration)
	if d == "" {
		t.Skip(envSoakDuration + " not set (make soak)")
	}
	duration, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("%s=%q: %v", envSoakDuration, d, err)
	}
	interval := duration / 20
	if v := os.Getenv(envSoakInterval); v != "" {
		if interval, err = time.ParseDuration(v); err != nil {
			t.Fatalf("%s=%q: %v", envSoakInterval, v, err)
		}
	}
	fc := newCase(t, "soak", fmt.Sprintf("none: continuous epochs for %s", duration), fmt.Sprintf(`
dataset: {limit_train: %d, limit_test: 10}
train: {epochs: 100000, batch_size: 50, knn_every: 0, checkpoint_every: 10}
`, soakSamples))
	c := fc.c
	fc.ingest()
	entries := fc.trainEntries("mnist", soakSamples)
	js := fc.js()
	train := fc.startStages().train

	var samples []soakSample
	start := time.Now()
	for {
		time.Sleep(interval)
		s := soakSample{at: time.Since(start), epochs: len(epochTrainedAny.FindAllStringIndex(train.Output(), -1)),
			rss: map[string]int64{}, streams: streamSizes(t, js)}
		s.rss["test (nats-server)"] = rss(t, os.Getpid())
		s.rss["test live heap"] = liveHeap()
		s.rss["minio"] = rss(t, c.MinIO().Pid())
		for _, p := range c.Procs() {
			if !p.Exited() {
				s.rss[p.Name()] = rss(t, p.Pid())
			} else if p.Name() != "ingest" {
				t.Fatalf("%s exited during the soak\n%s", p.Name(), p.Output())
			}
		}
		samples = append(samples, s)
		if s.at >= duration {
			break
		}
	}
	t.Logf("soak figures (RSS and live heap in MiB; streams: messages/bytes/consumers):\n%s", soakTable(samples))
	fc.check(entries, 1, nil, train.Output())
	checkFlat(t, fc, samples)
}

// epochTrainedAny matches any epoch's accounting line.
var epochTrainedAny = regexp.MustCompile(`msg="epoch trained"`)

type streamSize struct{ msgs, bytes, consumers uint64 }

type soakSample struct {
	at      time.Duration
	epochs  int
	rss     map[string]int64 // bytes, by process
	streams map[string]streamSize
}

var soakStreams = []string{messages.TopicDecodeTasks, messages.TopicImages, messages.TopicViews, messages.TopicEvents, messages.TopicDeadLetter}

func streamSizes(t *testing.T, js jetstream.JetStream) map[string]streamSize {
	t.Helper()
	out := map[string]streamSize{}
	for _, name := range soakStreams {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.Stream(ctx, name)
		cancel()
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		st := s.CachedInfo().State
		out[name] = streamSize{st.Msgs, st.Bytes, uint64(st.Consumers)}
	}
	return out
}

// liveHeap is the test process's heap after a collection: what nats-server
// and the harness really hold, without the garbage RSS also counts.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// rss reads VmRSS of a process from /proc.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("rss of %d: %v", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS of %d: %q", pid, v)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// soakTable prints one row per sample.
func soakTable(samples []soakSample) string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	names := procNames(samples)
	fmt.Fprint(w, "t\tepochs\t")
	for _, n := range names {
		fmt.Fprintf(w, "%s\t", n)
	}
	for _, s := range soakStreams {
		fmt.Fprintf(w, "%s\t", strings.TrimPrefix(s, "supflow_"))
	}
	fmt.Fprintln(w)
	for _, s := range samples {
		fmt.Fprintf(w, "%s\t%d\t", s.at.Round(time.Second), s.epochs)
		for _, n := range names {
			fmt.Fprintf(w, "%.1f\t", float64(s.rss[n])/(1<<20))
		}
		for _, name := range soakStreams {
			fmt.Fprintf(w, "%d/%d/%d\t", s.streams[name].msgs, s.streams[name].bytes, s.streams[name].consumers)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
	return b.String()
}

func procNames(samples []soakSample) []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range samples {
		for n := range s.rss {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}

// checkFlat applies the tolerances to the samples after the warm-up.
func checkFlat(t *testing.T, fc *faultCase, samples []soakSample) {
	t.Helper()
	warm := len(samples) / 3
	if warm == 0 || len(samples)-warm < 2 {
		t.Fatalf("%d samples: too few to judge growth; lower %s", len(samples), envSoakInterval)
	}
	base, last := samples[warm-1], samples[len(samples)-1]
	for name, b := range base.rss {
		limit := b + int64(float64(b)*rssSlackFrac) + rssSlackBytes
		peak := int64(0)
		for _, s := range samples[warm:] {
			peak = max(peak, s.rss[name])
		}
		if peak > limit {
			t.Errorf("%s: RSS rose from %.1f MiB after the warm-up to %.1f MiB (limit %.1f)", name, mib(b), mib(peak), mib(limit))
		}
	}
	for _, s := range samples[warm:] {
		for _, q := range soakStreams[:3] {
			if n := s.streams[q].msgs; n > 2*soakSamples {
				t.Errorf("%s: work queue %s holds %d messages, more than two epochs", s.at.Round(time.Second), q, n)
			}
		}
		for _, q := range soakStreams {
			if n, b := s.streams[q].consumers, base.streams[q].consumers; n > b+2 {
				t.Errorf("%s: stream %s has %d consumers, %d after the warm-up", s.at.Round(time.Second), q, n, b)
			}
		}
		if n := s.streams[messages.TopicDeadLetter].msgs; n > 0 {
			t.Errorf("%s: %d dead letters", s.at.Round(time.Second), n)
		}
	}
	epochs := last.epochs - base.epochs
	grew := int64(last.streams[messages.TopicEvents].bytes) - int64(base.streams[messages.TopicEvents].bytes)
	if epochs <= 0 {
		t.Fatalf("no epoch trained after the warm-up")
	}
	if per := grew / int64(epochs); per > eventBytesPerEpoch {
		t.Errorf("events stream grew %d bytes per epoch, more than %d", per, eventBytesPerEpoch)
	}
	fc.note("%d epochs in %s; after the warm-up: %d epochs, events stream +%d bytes per epoch", last.epochs,
		last.at.Round(time.Second), epochs, grew/int64(epochs))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
