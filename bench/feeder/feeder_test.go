package feederbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/internal/clustertest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/feeder"
	"github.com/supflow/supflow/store"
)

// ImageNet-1k's training split: 1,281,167 images in 1000 classes.
const (
	entries = 1281167
	classes = 1000
	prefix  = "imagenet"
	batch   = 64 // bus.batch's default, which the feeder runs with
)

// BenchmarkFeederImageNet runs once whatever b.N is (-benchtime 1x): the
// costs are start-up costs.
func BenchmarkFeederImageNet(b *testing.B) {
	ctx := context.Background()
	c := clustertest.New(b, fmt.Sprintf(`dataset: {prefix: %s, train_split: train, limit_train: 0}
train: {epochs: 1}
`, prefix))
	manifest, err := putDataset(ctx, c.Store())
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("bench-feeder %s, %d CPUs, %s\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), loadavg())
	fmt.Printf("manifest: %d entries, %d classes, %.1f MB in MinIO\n", entries, classes, float64(manifest)/1e6)

	// The first decode task, seen on the wire as the feeder publishes it.
	nc, err := nats.Connect(c.NATSURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	var msgs atomic.Int64
	first := make(chan time.Time, 1)
	if _, err := nc.Subscribe(messages.TopicDecodeTasks, func(*nats.Msg) {
		if msgs.Add(1) == 1 {
			first <- time.Now()
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	feed := c.StartEnv("feed", strings.Fields(os.Getenv("BENCH_FEED_ENV")), "feed")
	var at time.Time
	for at.IsZero() {
		select {
		case at = <-first:
		case <-time.After(100 * time.Millisecond):
			if feed.Exited() {
				b.Fatalf("supflow feed exited before its first task:\n%s", clustertest.Tail(feed.Output(), 3000))
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("no decode task within 5 minutes:\n%s", clustertest.Tail(feed.Output(), 3000))
			}
		}
	}
	rss, hwm := procMem(b, feed.Pid())
	firstCPU := procCPU(b, feed.Pid())
	firstTask := at.Sub(start).Seconds()
	// The rest of the epoch: the peak while publishing, or as far as 60 s
	// got (JetStream back-pressure paces the feeder on a busy machine).
	want := int64((entries + batch - 1) / batch)
	for t0 := time.Now(); msgs.Load() < want && time.Since(t0) < time.Minute; {
		time.Sleep(100 * time.Millisecond)
	}
	_, peak := procMem(b, feed.Pid())
	sent := msgs.Load()
	feed.Kill()
	fmt.Printf("--- supflow feed's log:\n%s\n", clustertest.Tail(feed.Output(), 1500))
	fmt.Printf("supflow feed: first task after %.2f s (%.2f s of CPU), RSS %.0f MB (peak %.0f MB); peak %.0f MB after %d of %d task messages  %s\n",
		firstTask, firstCPU, rss, hwm, peak, sent, want, loadavg())

	// The same path in this process, step by step, then the same manifest
	// as the []dataset.Entry of dataset.Load (what supflow feed held
	// before dataset.Table) for the ratio.
	t0 := time.Now()
	t, err := dataset.LoadTable(ctx, c.Store(), prefix, "train")
	if err != nil {
		b.Fatal(err)
	}
	load := time.Since(t0).Seconds()
	heap := heapMB()
	t0 = time.Now()
	f, err := feeder.New(feeder.Config{RunID: "bench", Seed: 3, Epochs: 1, Batch: batch}, t.Take(0, 3))
	if err != nil {
		b.Fatal(err)
	}
	check := time.Since(t0).Seconds()
	t0 = time.Now()
	order := f.Order(1)
	shuffle := time.Since(t0).Seconds()
	runtime.KeepAlive(order)
	fmt.Printf("in process: LoadTable %.2f s (heap after GC %.0f MB, %.0f B/entry), take + feeder.New %.2f s, epoch shuffle %.3f s  %s\n",
		load, heap, heap*1e6/entries, check, shuffle, loadavg())
	runtime.KeepAlive(f)
	f, t = nil, nil
	t0 = time.Now()
	d, err := dataset.Load(ctx, c.Store(), prefix)
	if err != nil {
		b.Fatal(err)
	}
	full := time.Since(t0).Seconds()
	listHeap := heapMB()
	runtime.KeepAlive(d)
	fmt.Printf("in process: Load ([]dataset.Entry) %.2f s, heap after GC %.0f MB (%.0f B/entry): Table/[]Entry heap %.2fx  %s\n",
		full, listHeap, listHeap*1e6/entries, heap/listHeap, loadavg())
	fmt.Printf("FEEDER entries=%d rss_mb=%.0f rss_peak_mb=%.0f first_task_s=%.2f first_task_cpu_s=%.2f epoch_shuffle_s=%.3f load_s=%.2f heap_mb=%.0f heap_vs_entries=%.2f\n",
		entries, hwm, peak, firstTask, firstCPU, shuffle, load, heap, heap/listHeap)
	fmt.Printf("targets: rss <= 200 MB %s, first task <= 5 s %s\n", verdict(hwm <= 200), verdict(firstTask <= 5))
}

// heapMB is the live heap after a collection, in MB.
func heapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / 1e6
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// putDataset writes classes.json, info.json and the manifest of a
// synthetic ImageNet training split, as `supflow ingest` of an ImageFolder
// would (keys <prefix>/train/<wnid>/<wnid>_<n>.JPEG, sizes around 110 KB,
// SHA-256s), and returns the manifest's size.
func putDataset(ctx context.Context, s *store.Client) (int, error) {
	if err := s.EnsureBucket(ctx); err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	names := make([]string, classes)
	for i := range names {
		names[i] = fmt.Sprintf("n%08d", 1440764+i*4117) // WordNet ids look like n01440764
	}
	es := make([]dataset.Entry, 0, entries)
	for i := range entries {
		l := i * classes / entries // class by class, as ingest writes
		sum := make([]byte, 32)
		for j := range sum {
			sum[j] = byte(rng.Uint32())
		}
		es = append(es, dataset.Entry{
			Key:    fmt.Sprintf("%s/train/%s/%s_%d.JPEG", prefix, names[l], names[l], 1+rng.IntN(50000)*1000+i%1000),
			Label:  int32(l),
			Class:  names[l],
			Split:  "train",
			Size:   int64(60000 + rng.IntN(100000)),
			SHA256: fmt.Sprintf("%x", sum),
		})
	}
	var m bytes.Buffer
	if err := dataset.WriteManifest(&m, es); err != nil {
		return 0, err
	}
	cj, err := json.Marshal(names)
	if err != nil {
		return 0, err
	}
	ij, err := json.Marshal(dataset.Info{Source: "imagefolder", Format: "jpeg", Channels: 3,
		Mean: []float64{0.485, 0.456, 0.406}, Std: []float64{0.229, 0.224, 0.225}, StatsSplit: "train",
		Counts: map[string]int{"train": entries}, Classes: classes, Sampled: 1000})
	if err != nil {
		return 0, err
	}
	for _, o := range []struct {
		key  string
		data []byte
	}{{dataset.ClassesKey(prefix), cj}, {dataset.InfoKey(prefix), ij}, {dataset.ManifestKey(prefix), m.Bytes()}} {
		if err := s.Put(ctx, o.key, o.data, store.PutOptions{}); err != nil {
			return 0, fmt.Errorf("put %s: %w", o.key, err)
		}
	}
	return m.Len(), nil
}

// procMem returns a process's resident set and its peak so far, in MB.
func procMem(b *testing.B, pid int) (rss, hwm float64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb * 1024 / 1e6
		case "VmHWM:":
			hwm = kb * 1024 / 1e6
		}
	}
	return rss, hwm
}

// procCPU returns the user + system CPU seconds a process used so far
// (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s).
func procCPU(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name, field 2, may hold spaces: count from its ")".
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// loadavg is /proc/loadavg, printed next to numbers: the machine is shared.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "loadavg unknown"
	}
	return "loadavg " + strings.Join(strings.Fields(string(raw))[:3], " ")
}
