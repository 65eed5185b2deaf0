package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/internal/cputime"
	"github.com/supflow/supflow/internal/fixtures"
	"github.com/supflow/supflow/internal/storetest"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/stages/evaluate"
	"github.com/supflow/supflow/store"
)

// countingObjects is the store client as decode's Getter, counting GETs.
type countingObjects struct {
	*store.Client
	gets atomic.Int64
}

func (c *countingObjects) GetMax(ctx context.Context, key string, max int64) ([]byte, error) {
	c.gets.Add(1)
	return c.Client.GetMax(ctx, key, max)
}

func (c *countingObjects) GetRange(ctx context.Context, key string, off, n, max int64) ([]byte, error) {
	return c.AppendRange(ctx, nil, key, off, n, max)
}

// AppendRange is what decode's runs call.
func (c *countingObjects) AppendRange(ctx context.Context, dst []byte, key string, off, n, max int64) ([]byte, error) {
	c.gets.Add(1)
	return c.Client.AppendRange(ctx, dst, key, off, n, max)
}

// pixelEncoder encodes an image as its pixels: equal rows are equal images.
type pixelEncoder struct{}

func (pixelEncoder) Encode(_ context.Context, im engine.Images) ([]float32, int, error) {
	f := make([]float32, len(im.Pixels))
	for i, p := range im.Pixels {
		f[i] = float32(p)
	}
	return f, len(im.Pixels) / im.N, nil
}

// ingestShardedMNIST ingests train and test MNIST digits into c under
// "sh", in shards of shardBytes (ingestSharded).
func ingestShardedMNIST(t testing.TB, c *store.Client, train, test int, shardBytes int64) (d dataset.Report, trainTasks, testTasks []messages.DecodeTask) {
	t.Helper()
	src, err := dataset.OpenIDX(fixtures.MNISTDir(t), "mnist", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ingestSharded(t, c, src, map[string]int{"train": train, "test": test}, shardBytes)
}

// ingestSharded ingests src (limit images per split, 0 all) into c under
// "sh", in shards of shardBytes, and returns the ingest and the splits'
// tasks as the evaluation makes them (run "r", sample id = position).
func ingestSharded(t testing.TB, c *store.Client, src dataset.Source, limit map[string]int, shardBytes int64) (d dataset.Report, trainTasks, testTasks []messages.DecodeTask) {
	t.Helper()
	d, err := dataset.Ingest(t.Context(), c, src, dataset.Options{Prefix: "sh", ShardBytes: shardBytes, Limit: dataset.Selection{PerSplit: limit}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range d.Entries {
		if e.Split == "train" {
			trainTasks = append(trainTasks, e.Task("r", 0, uint64(len(trainTasks))))
		} else {
			testTasks = append(testTasks, e.Task("r", 0, uint64(len(testTasks))))
		}
	}
	return d, trainTasks, testTasks
}

// countedDecoder is newDecoder's stage for the data set of ingestSharded
// on the counting store, with the decode cache when cached; gray for a
// gray data set.
func countedDecoder(t testing.TB, objects *countingObjects, cache *storetest.CountingBlobs, gray, cached bool) *decode.Stage {
	t.Helper()
	s, err := decode.New(decode.Config{Config: imgdecode.Config{Gray: gray}, Cache: cached}, decode.Deps{Objects: objects,
		IsNotFound:   func(err error) bool { return errors.Is(err, store.ErrNotFound) },
		IsTooLarge:   func(err error) bool { return errors.Is(err, store.ErrTooLarge) },
		IsOutOfRange: func(err error) bool { return errors.Is(err, store.ErrOutOfRange) },
		Allow:        func(key string) error { return dataset.UnderPrefix(key, "sh") },
		Cache:        cache, CachePrefix: "cache/sh",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// alone loads each task of a chunk with a GET of its own, as the
// evaluation did before it read shards in runs.
func alone(dec *decode.Stage) evaluate.Loader {
	return evaluate.Planned(func(tasks []messages.DecodeTask) []messages.DecodeTask { return tasks }, dec.Handle)
}

// TestEvaluationShardRuns runs the cases on the embedded S3 endpoint,
// TestIntegrationEvaluationShardRunsMinIO on a real MinIO.
func TestEvaluationShardRuns(t *testing.T) { testEvaluationShardRuns(t, storetest.New(t)) }

func TestIntegrationEvaluationShardRunsMinIO(t *testing.T) {
	testEvaluationShardRuns(t, storetest.MinIO(t, "evalruns"))
}

// testEvaluationShardRuns: the evaluation's loader (newLoader's
// evaluate.Planned(dec.Plan, dec.HandleTask)) embeds a sharded data set
// with one GET per shard and chunk, where loading one by one makes one per
// sample, and gives the same rows, in the order of the tasks, whatever
// order they come in; so do Evaluate and the kNN monitor. With the decoded
// shards built, it reads no original and one span of each decoded shard
// per chunk. After a shard is cut in the middle of a member, exactly the
// samples past the cut are Skipped, each naming its place, and the others
// are embedded as before.
func testEvaluationShardRuns(t *testing.T, c *store.Client) {
	ctx := t.Context()
	d, train, test := ingestShardedMNIST(t, c, 300, 100, 32<<10)
	objects, cache := &countingObjects{Client: c}, &storetest.CountingBlobs{Blobs: store.Blobs{C: c}}
	newStage := func(cached bool) *decode.Stage { return countedDecoder(t, objects, cache, true, cached) }
	dec := newStage(false)
	planned := evaluate.Planned(dec.Plan, dec.HandleTask)
	oneByOne := alone(dec)
	const chunk = 100 // not a multiple of a shard's 32 members: chunks split shards
	sc := evaluate.Scoring{Size: 28, Channels: 1, Classes: 10, Workers: 4, ChunkSize: chunk,
		Probe: probe.Config{Epochs: 3, BatchSize: 64, Seed: 1}, KNN: probe.KNNConfig{K: 5}}
	// shards counts the shards of tasks; maxGets bounds the GETs of their
	// chunked load in shard order: a run ends only at a shard's end or a
	// chunk's.
	shards := func(tasks []messages.DecodeTask) int64 {
		keys := map[string]bool{}
		for _, t := range tasks {
			keys[t.Key] = true
		}
		return int64(len(keys))
	}
	maxGets := func(tasks []messages.DecodeTask) int64 { return shards(tasks) + int64(len(tasks)+chunk-1)/chunk }
	embed := func(t *testing.T, tasks []messages.DecodeTask, load evaluate.Loader) (*evaluate.Embedding, int64) {
		t.Helper()
		before := objects.gets.Load()
		e, err := evaluate.Embed(ctx, sc, tasks, load, pixelEncoder{}, false)
		if err != nil {
			t.Fatal(err)
		}
		return e, objects.gets.Load() - before
	}
	same := func(t *testing.T, got, want *evaluate.Embedding) {
		t.Helper()
		if !slices.Equal(got.Features, want.Features) || !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Keys, want.Keys) ||
			!slices.Equal(got.Labels, want.Labels) || got.Dim != want.Dim || len(got.Skipped) != len(want.Skipped) {
			t.Fatalf("%d rows (ids %v), %d skipped; one by one: %d rows (ids %v), %d skipped",
				got.Len(), got.IDs, len(got.Skipped), want.Len(), want.IDs, len(want.Skipped))
		}
		for i, sk := range got.Skipped {
			if sk.Key != want.Skipped[i].Key || sk.Err.Error() != want.Skipped[i].Err.Error() {
				t.Fatalf("skipped %d: %s: %v; one by one: %s: %v", i, sk.Key, sk.Err, want.Skipped[i].Key, want.Skipped[i].Err)
			}
		}
	}
	want, gets := embed(t, train, oneByOne)
	if gets != int64(len(train)) || want.Len() != len(train) {
		t.Fatalf("one by one: %d GETs, %d rows for %d samples", gets, want.Len(), len(train))
	}

	t.Run("in runs", func(t *testing.T) {
		mixed := slices.Clone(train)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
		wantMixed, _ := embed(t, mixed, oneByOne)
		for name, tasks := range map[string][]messages.DecodeTask{"manifest order": train, "shuffled": mixed} {
			got, gets := embed(t, tasks, planned)
			t.Logf("%s: %d GETs for %d samples in %d shards", name, gets, len(tasks), shards(tasks))
			if gets > maxGets(tasks) {
				t.Errorf("%s: %d GETs for %d samples in %d shards, want at most %d", name, gets, len(tasks), shards(tasks), maxGets(tasks))
			}
			if name == "shuffled" {
				same(t, got, wantMixed)
			} else {
				same(t, got, want)
			}
		}
	})
	t.Run("Evaluate and the monitor", func(t *testing.T) {
		before := objects.gets.Load()
		res, err := evaluate.Evaluate(ctx, sc, train, test, planned, pixelEncoder{})
		if err != nil {
			t.Fatal(err)
		}
		gets := objects.gets.Load() - before
		wantRes, err := evaluate.Evaluate(ctx, sc, train, test, oneByOne, pixelEncoder{})
		if err != nil {
			t.Fatal(err)
		}
		if gets > maxGets(train)+maxGets(test) || res.Linear.Top1 != wantRes.Linear.Top1 || res.KNN.Top1 != wantRes.KNN.Top1 ||
			res.Train != len(train) || res.Test != len(test) {
			t.Errorf("%d GETs for %d samples; linear %v, kNN %v on %d/%d; one by one: linear %v, kNN %v",
				gets, len(train)+len(test), res.Linear.Top1, res.KNN.Top1, res.Train, res.Test, wantRes.Linear.Top1, wantRes.KNN.Top1)
		}
		var trainEntries, testEntries []dataset.Entry
		for _, e := range d.Entries {
			if e.Split == "train" {
				trainEntries = append(trainEntries, e)
			} else {
				testEntries = append(testEntries, e)
			}
		}
		mon, err := evaluate.NewMonitor(sc, "r", trainEntries, testEntries, planned, pixelEncoder{})
		if err != nil {
			t.Fatal(err)
		}
		before = objects.gets.Load()
		score, err := mon.Score(ctx)
		if gets := objects.gets.Load() - before; err != nil || gets > maxGets(train)+maxGets(test) || score.Top1 != wantRes.KNN.Top1 {
			t.Errorf("monitor: kNN %v, %d GETs: %v; the evaluation's kNN %v", score.Top1, gets, err, wantRes.KNN.Top1)
		}
	})
	t.Run("decoded shards", func(t *testing.T) {
		cached := newStage(true)
		if _, err := cached.BuildShards(ctx, train, 2); err != nil {
			t.Fatal(err)
		}
		before, cacheBefore := objects.gets.Load(), cache.Ranges.Load()
		got, _ := embed(t, train, evaluate.Planned(cached.Plan, cached.HandleTask))
		// Each shard's index is read once (two ranged GETs), then each
		// chunk's run reads its span of records.
		gets, cacheGets := objects.gets.Load()-before, cache.Ranges.Load()-cacheBefore
		if gets != 0 || cacheGets > 2*shards(train)+maxGets(train) {
			t.Errorf("%d GETs of the originals, %d of the decoded shards, for %d samples", gets, cacheGets, len(train))
		}
		same(t, got, want)
	})
	t.Run("a truncated shard", func(t *testing.T) { // last: it cuts the shard
		mid := train[len(train)/2]
		cut := int(mid.Offset) + int(mid.Length) - 1
		storetest.Truncate(t, c, mid.Key, int64(cut))
		got, _ := embed(t, train, planned)
		wantCut, _ := embed(t, train, oneByOne)
		same(t, got, wantCut)
		var past []uint64
		for _, task := range train {
			if task.Key == mid.Key && int(task.Offset)+int(task.Length) > cut {
				past = append(past, task.SampleID)
			}
		}
		if len(past) == 0 || len(got.Skipped) != len(past) || got.Len() != len(train)-len(past) {
			t.Fatalf("%d skipped, %d rows; want the %d members past the cut skipped", len(got.Skipped), got.Len(), len(past))
		}
		for _, sk := range got.Skipped {
			if sk.Key != mid.Key || !errors.Is(sk.Err, decode.ErrOutOfRange) || !errors.Is(sk.Err, messages.ErrPermanent) {
				t.Errorf("skipped %s: %v", sk.Key, sk.Err)
			}
		}
		// The rows left are the uncut data set's, less those past the cut.
		for i, id := range got.IDs {
			j := slices.Index(want.IDs, id)
			if slices.Contains(past, id) || !slices.Equal(got.Features[i*got.Dim:(i+1)*got.Dim], want.Features[j*want.Dim:(j+1)*want.Dim]) {
				t.Fatalf("row %d (sample %d) differs from the uncut data set's", i, id)
			}
		}
	})
}

// BenchmarkEmbedSharded embeds 2,000 images ingested in shards of 256 KiB
// on the embedded S3 endpoint (in the process: its CPU is counted) through
// the evaluation's loader: with one GET per sample (as before), in runs,
// and in runs with the decoded shards built. It reports GETs and CPU time
// (the whole process's) per sample besides ns/op. The images: gray28,
// MNIST digits (PNG, ~280 bytes, 256 to a shard); png32, 32x32 RGB PNGs
// of noise over a gradient (~2.2 KB, about CIFAR-10's, ~85 to a shard).
// The encoder is the pixels, so what is measured is the load: fetch,
// decode, crop. Run it with -benchtime 5x (and -v for the sets' sizes).
func BenchmarkEmbedSharded(b *testing.B) {
	for _, set := range []struct {
		name     string
		channels int
		source   func(b *testing.B) dataset.Source
	}{
		{"gray28", 1, func(b *testing.B) dataset.Source {
			src, err := dataset.OpenIDX(fixtures.MNISTDir(b), "mnist", nil)
			if err != nil {
				b.Fatal(err)
			}
			return src
		}},
		{"png32", 3, noiseFolder},
	} {
		c := storetest.New(b)
		d, train, _ := ingestSharded(b, c, set.source(b), map[string]int{"train": 2000, "test": 1}, 256<<10)
		bytes := 0
		for _, e := range d.Entries {
			bytes += int(e.Size)
		}
		b.Logf("%s: %d images, %d bytes each on average, in %d shards", set.name, len(d.Entries), bytes/len(d.Entries), d.Shards)
		objects, cache := &countingObjects{Client: c}, &storetest.CountingBlobs{Blobs: store.Blobs{C: c}}
		gray := set.channels == 1
		dec, cached := countedDecoder(b, objects, cache, gray, false), countedDecoder(b, objects, cache, gray, true)
		if _, err := cached.BuildShards(b.Context(), train, 2); err != nil {
			b.Fatal(err)
		}
		side := map[bool]int{true: 28, false: 32}[gray]
		sc := evaluate.Scoring{Size: side, Channels: set.channels, Classes: 10, Workers: 4} // cmd/supflow's scoring, chunks of 1024
		for _, bc := range []struct {
			name string
			load evaluate.Loader
		}{
			{"one_GET_each", alone(dec)},
			{"runs", evaluate.Planned(dec.Plan, dec.HandleTask)},
			{"runs_decoded_shards", evaluate.Planned(cached.Plan, cached.HandleTask)},
		} {
			b.Run(set.name+"/"+bc.name, func(b *testing.B) {
				gets, cpu := objects.gets.Load()+cache.Ranges.Load(), cputime.Seconds()
				for b.Loop() {
					if _, err := evaluate.Embed(b.Context(), sc, train, bc.load, pixelEncoder{}, false); err != nil {
						b.Fatal(err)
					}
				}
				samples := float64(b.N * len(train))
				b.ReportMetric(float64(objects.gets.Load()+cache.Ranges.Load()-gets)/samples, "GETs/sample")
				b.ReportMetric((cputime.Seconds()-cpu)*1e3/samples, "cpu-ms/sample")
			})
		}
	}
}

// noiseFolder writes an ImageFolder of 2,000 train and 10 test 32x32 RGB
// PNGs in 10 classes, each noise over a gradient, and opens it.
func noiseFolder(b *testing.B) dataset.Source {
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	for split, n := range map[string]int{"train": 2000, "test": 10} {
		for i := range n {
			class := filepath.Join(dir, split, fmt.Sprint(i%10))
			if err := os.MkdirAll(class, 0o755); err != nil {
				b.Fatal(err)
			}
			im := image.NewRGBA(image.Rect(0, 0, 32, 32))
			for y := range 32 {
				for x := range 32 {
					im.Set(x, y, color.RGBA{uint8(8*x + rng.IntN(24)), uint8(8*y + rng.IntN(24)), uint8(20*(i%10) + rng.IntN(24)), 255})
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, im); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(class, fmt.Sprintf("%05d.png", i)), buf.Bytes(), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	src, err := dataset.OpenImageFolder(dir, 3)
	if err != nil {
		b.Fatal(err)
	}
	return src
}
