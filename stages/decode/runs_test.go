package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/store"
)

// countingStore is the store client counting ranged GETs; the next
// failRanges of them fail with a transient error.
type countingStore struct {
	*store.Client
	ranges, failRanges atomic.Int64
	longest            atomic.Int64 // bytes of the longest range asked for
	reused             atomic.Int64 // ranges read into a buffer with room
}

var errFlaky = errors.New("test: connection reset")

func (c *countingStore) GetRange(ctx context.Context, key string, off, n, max int64) ([]byte, error) {
	return c.AppendRange(ctx, nil, key, off, n, max)
}

// AppendRange is what a run's GET calls (rangeAppender).
func (c *countingStore) AppendRange(ctx context.Context, dst []byte, key string, off, n, max int64) ([]byte, error) {
	c.ranges.Add(1)
	if cap(dst) > 0 {
		c.reused.Add(1)
	}
	if n > c.longest.Load() {
		c.longest.Store(n)
	}
	if c.failRanges.Add(-1) >= 0 {
		return nil, errFlaky
	}
	return c.Client.AppendRange(ctx, dst, key, off, n, max)
}

// TestShardRuns runs the merged-GET cases on the embedded S3 endpoint,
// TestIntegrationShardRunsMinIO on a real MinIO.
func TestShardRuns(t *testing.T) { testShardRuns(t, storetest.New(t)) }

func TestIntegrationShardRunsMinIO(t *testing.T) {
	testShardRuns(t, storetest.MinIO(t, "runs"))
}

// testShardRuns: a batch's members of one shard are fetched with one
// ranged GET and decode to the pixels a GET of each gives; a member past
// its shard's end, a shard truncated in the middle of a run and a missing
// shard fail exactly their members, permanently and each naming its place,
// while the rest of the batch decodes; a transient failure of a run's GET
// fails its task for a redelivery; with the cache on, members of a shard
// whose decoded shard is built need no GET, and without it take theirs
// from the run; no GET reads more than decode.max_object_bytes.
func testShardRuns(t *testing.T, c *store.Client) {
	ctx := t.Context()
	d := ingestShards(t, c)
	var entries []dataset.Entry
	lastEnd := map[string]uint64{} // of each shard's last member; the shard ends under 1,536 bytes later
	for _, e := range d.Entries {
		if e.Split == "train" {
			entries = append(entries, e)
			lastEnd[e.Shard] = max(lastEnd[e.Shard], uint64(e.Offset+e.Size))
		}
	}
	if len(lastEnd) < 3 {
		t.Fatalf("%d shards, want several", len(lastEnd))
	}
	counting := &countingStore{Client: c}
	cache := &memCache{m: map[string][]byte{}}
	newStage := func(cached bool, maxObjectBytes int64) *Stage {
		s, err := New(Config{Config: imgdecode.Config{Gray: true}, Cache: cached, MaxObjectBytes: maxObjectBytes}, Deps{Objects: counting, Cache: cache, CachePrefix: "cache",
			IsNotFound:   func(err error) bool { return errors.Is(err, store.ErrNotFound) },
			IsTooLarge:   func(err error) bool { return errors.Is(err, store.ErrTooLarge) },
			IsOutOfRange: func(err error) bool { return errors.Is(err, store.ErrOutOfRange) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newStage(false, 0)
	tasks := make([]messages.DecodeTask, len(entries))
	want := make([][]byte, len(entries)) // each member's pixels, one GET each
	for i, e := range entries {
		tasks[i] = e.Task("r", 1, uint64(i))
		img, err := s.Handle(ctx, tasks[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = img.Pixels
	}
	// run decodes one batch as the bus does (a task after a transient
	// failure is not reached: the batch is redelivered) and returns the
	// ranged GETs it made and each task's error.
	run := func(s *Stage, batch []messages.DecodeTask) (int64, []error) {
		before := counting.ranges.Load()
		errs := make([]error, len(batch))
		for i, task := range s.Plan(batch) {
			img, err := s.HandleTask(ctx, task)
			switch {
			case err == nil && !bytes.Equal(img.Pixels, want[task.SampleID]):
				t.Fatalf("sample %d: pixels differ from its own GET's", task.SampleID)
			case err == nil && (img.SampleID != task.SampleID || img.Label != task.Label):
				t.Fatalf("sample %d: image %d, label %d", task.SampleID, img.SampleID, img.Label)
			case err != nil && !errors.Is(err, messages.ErrPermanent):
				errs[i] = err
				return counting.ranges.Load() - before, errs
			}
			errs[i] = err
		}
		return counting.ranges.Load() - before, errs
	}
	ofShard := func(shard string) (out []messages.DecodeTask) {
		for _, task := range tasks {
			if task.Key == shard {
				out = append(out, task)
			}
		}
		return out
	}
	shards := []string{entries[0].Shard, entries[len(entries)/2].Shard, entries[len(entries)-1].Shard}

	t.Run("one GET per shard of a batch", func(t *testing.T) {
		order := rand.New(rand.NewPCG(1, 2)).Perm(len(tasks))
		for n := 0; n < len(order); n += 64 {
			var batch []messages.DecodeTask
			inBatch := map[string]bool{}
			for _, i := range order[n:min(n+64, len(order))] {
				batch, inBatch[tasks[i].Key] = append(batch, tasks[i]), true
			}
			if gets, errs := run(s, batch); gets != int64(len(inBatch)) || errors.Join(errs...) != nil {
				t.Fatalf("batch at %d: %d GETs for %d shards: %v", n, gets, len(inBatch), errors.Join(errs...))
			}
		}
	})
	t.Run("a run's buffer is reused, its images are not", func(t *testing.T) {
		counting.reused.Store(0)
		var kept []messages.Image
		for range 10 {
			for _, shard := range shards {
				for _, task := range s.Plan(ofShard(shard)) {
					img, err := s.HandleTask(ctx, task)
					if err != nil {
						t.Fatal(err)
					}
					kept = append(kept, img)
				}
			}
		}
		for _, img := range kept {
			if !bytes.Equal(img.Pixels, want[img.SampleID]) {
				t.Fatalf("sample %d: pixels changed once later runs read into its run's buffer", img.SampleID)
			}
		}
		// sync.Pool may drop a buffer (a collection, the goroutine moving
		// to another P), never all of them.
		if counting.reused.Load() == 0 {
			t.Errorf("none of %d runs' GETs reused a buffer", 10*len(shards))
		}
	})
	t.Run("a member past the end", func(t *testing.T) {
		batch := ofShard(shards[0])
		past := batch[len(batch)/2]
		past.Offset = lastEnd[past.Key] + 1536 // in its run's reach, past the shard's end
		batch = append(batch, past)
		_, errs := run(s, batch)
		for i, err := range errs {
			if bad := i == len(batch)-1; bad != (err != nil) || bad && !(errors.Is(err, ErrOutOfRange) && strings.Contains(err.Error(), fmt.Sprintf("@%d+%d", past.Offset, past.Length))) {
				t.Errorf("task %d (offset %d): %v", i, batch[i].Offset, err)
			}
		}
	})
	t.Run("a missing shard", func(t *testing.T) {
		batch := append(ofShard(shards[0]), ofShard(shards[1])...)
		for i := range batch[:3] {
			batch[i].Key = "sh/shards/none.tar"
		}
		_, errs := run(s, batch)
		for i, err := range errs {
			if bad := i < 3; bad != (err != nil) || bad && !errors.Is(err, ErrNotFound) {
				t.Errorf("task %d: %v", i, err)
			}
		}
	})
	t.Run("a transient failure redelivers", func(t *testing.T) {
		batch := ofShard(shards[0])
		counting.failRanges.Store(1)
		if _, errs := run(s, batch); errs[0] == nil || errors.Is(errs[0], messages.ErrPermanent) {
			t.Fatalf("first task: %v, want a transient error", errs[0])
		}
		if gets, errs := run(s, batch); gets != 1 || errors.Join(errs...) != nil {
			t.Fatalf("redelivery: %d GETs: %v", gets, errors.Join(errs...))
		}
	})
	t.Run("the cache", func(t *testing.T) {
		batch := ofShard(shards[0])
		for pass, wantGets := range []int64{1, 0, 1} {
			switch pass {
			case 1: // the shard's decoded shard built: no GET of the original
				if _, err := newStage(true, 0).BuildShard(ctx, batch); err != nil {
					t.Fatal(err)
				}
			case 2: // gone again: the run's one GET
				clear(cache.m)
			}
			if gets, errs := run(newStage(true, 0), batch); gets != wantGets || errors.Join(errs...) != nil {
				t.Fatalf("pass %d: %d GETs, want %d: %v", pass, gets, wantGets, errors.Join(errs...))
			}
		}
	})
	t.Run("runs within max_object_bytes", func(t *testing.T) {
		batch := ofShard(shards[0])
		counting.longest.Store(0)
		gets, errs := run(newStage(false, 4096), batch)
		if long := counting.longest.Load(); gets < 2 || long > 4096 || errors.Join(errs...) != nil {
			t.Fatalf("%d members: %d GETs, the longest %d bytes: %v", len(batch), gets, long, errors.Join(errs...))
		}
	})
	t.Run("a shard truncated in the middle of a run", func(t *testing.T) { // last: it cuts the shard
		batch := ofShard(shards[2])
		mid := batch[len(batch)/2]
		cut := int(mid.Offset) + int(mid.Length) - 1
		storetest.Truncate(t, c, mid.Key, int64(cut))
		_, errs := run(s, batch)
		for i, err := range errs {
			if bad := int(batch[i].Offset+uint64(batch[i].Length)) > cut; bad != (err != nil) || bad && !errors.Is(err, ErrOutOfRange) {
				t.Errorf("task %d (offset %d, cut at %d): %v", i, batch[i].Offset, cut, err)
			}
		}
	})
}

// FuzzPlan: whatever tasks a message holds (a task on the bus may come
// from anyone who can publish there), Plan keeps each task as it came and
// every run it forms covers its members, names their shard and stays
// within the GET bounds.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{0, 10, 5, 0, 12, 5, 1, 0, 3, 0, 255, 255})
	f.Add([]byte{2, 0, 0, 2, 0, 1, 2, 200, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := New(Config{MaxObjectBytes: 1 << 20}, Deps{Objects: memObjects{}, Allow: func(key string) error {
			if key == "shard-2" {
				return errors.New("not in the data set")
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		var tasks []messages.DecodeTask
		for ; len(b) >= 3; b = b[3:] {
			// key of 4, offset in 32 KiB steps, length up to 2 MiB
			tasks = append(tasks, messages.DecodeTask{SampleID: uint64(len(tasks)), Key: fmt.Sprintf("shard-%d", b[0]%4),
				Offset: uint64(b[1]) << 15, Length: uint32(b[2]) << 13})
		}
		planned := s.Plan(tasks)
		if len(planned) != len(tasks) {
			t.Fatalf("%d planned of %d", len(planned), len(tasks))
		}
		for i, p := range planned {
			r := p.run
			switch {
			case p.DecodeTask != tasks[i]:
				t.Fatalf("task %d changed: %+v", i, p.DecodeTask)
			case r == nil:
			case r.key != p.Key || r.key == "shard-2" || p.Length == 0 || int64(p.Length) > s.cfg.MaxObjectBytes,
				int64(p.Offset) < r.off || int64(p.Offset)+int64(p.Length) > r.off+r.n, r.n > min(maxRunBytes, s.cfg.MaxObjectBytes):
				t.Fatalf("task %+v in run %s@%d+%d", p.DecodeTask, r.key, r.off, r.n)
			}
		}
	})
}

// ingestShards ingests 120 MNIST training digits (and one test digit)
// into c under prefix "sh", in shards of 32 KiB.
func ingestShards(t *testing.T, c *store.Client) dataset.Report {
	t.Helper()
	src, err := dataset.OpenIDX(fixtures.MNISTDir(t), "mnist", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Ingest(t.Context(), c, src, dataset.Options{Prefix: "sh", ShardBytes: 32 << 10,
		Limit: dataset.Selection{PerSplit: map[string]int{"train": 120, "test": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
