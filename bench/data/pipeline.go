package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/dataset"
	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/internal/cputime"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/stages/feeder"
	"github.com/supflow/supflow/stages/routes"
	"github.com/supflow/supflow/store"
	"github.com/supflow/supflow/transform"
)

// Pipeline runs use two decode and two augment workers: one per core of
// the 2-core machine the targets are for.
const decodeWorkers, augmentWorkers = 2, 2

// batchSizes are the bus.batch values each case runs with; its sharded
// variants run in the feeder's order for each of shardRuns
// (feeder.shard_run; 1 is the full shuffle, named <case>_sharded, the
// others <case>_sharded_run<n>), with shardBatches of it. shardMembers is
// how many images a bench shard holds.
var (
	batchSizes   = []int{1, 8, 32, 64, defaultBatch}
	shardRuns    = []int{1, 16, feeder.DefaultShardRun, 256}
	shardBatches = map[int][]int{1: {1, defaultBatch}, 16: {64}, feeder.DefaultShardRun: {64, defaultBatch}, 256: {defaultBatch}}
)

// defaultBatch is bus.batch's default.
var defaultBatch = bus.DefaultLimits().Batch

const shardMembers = 500

// benchRun is the run id of every task and message of the benchmarks.
const benchRun = "bench"

// variant is a case's tasks in one layout and order, run for each of its
// bus.batch values with the image and view streams in storage
// (bus.storage); fused variants also run fused (decode --augment) at the
// default batch.
type variant struct {
	name    string
	tasks   []messages.DecodeTask
	batches []int
	fused   bool
	storage string
}

// pipelineCase is one image set pushed through the pipeline.
type pipelineCase struct {
	name string
	pngs [][]byte
	size int  // view side
	gray bool // 28x28 gray digits-like
}

// pipelines pushes each case's PNGs through feeder -> decode -> augment ->
// a counting sink over embedded JetStream and S3, for each bus.batch, then
// does the same work without the bus and S3 to price it in CPU time.
func pipelines(cases []pipelineCase) error {
	ctx := context.Background()
	objects, closeS3, err := embeddedBucket(ctx)
	if err != nil {
		return err
	}
	defer closeS3()
	fmt.Printf("Pipeline: PNGs in embedded S3 -> decode (%d workers) -> augment (%d workers, 2 views) -> counting sink, embedded JetStream, GOMAXPROCS=%d\n",
		decodeWorkers, augmentWorkers, runtime.GOMAXPROCS(0))
	fmt.Printf("%-34s %10s %14s %10s %8s  %s\n", "run", "samples/s", "CPU ms/sample", "bus share", "vs work", "load")
	var hdr float64
	for _, pc := range cases {
		keys := make([]string, len(pc.pngs))
		tasks := make([]messages.DecodeTask, len(pc.pngs))
		for i, b := range pc.pngs {
			keys[i] = fmt.Sprintf("%s/%05d.png", pc.name, i)
			if err := objects.Put(ctx, keys[i], b, store.PutOptions{}); err != nil {
				return err
			}
			tasks[i] = messages.DecodeTask{RunID: benchRun, SampleID: uint64(i), Key: keys[i], Label: -1, Split: "train"}
		}
		sh, err := packShards(ctx, objects, pc.name, keys, pc.pngs)
		if err != nil {
			return err
		}
		sizes := sh.sizes() // by sample id, for loose tasks too
		dec, err := decode.New(decode.Config{Config: imgdecode.Config{Gray: pc.gray}}, decode.Deps{Objects: objects, IsNotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) }})
		if err != nil {
			return err
		}
		aug, err := augment.New(augment.Config{Seed: 1, Config: transform.Config{Size: pc.size}})
		if err != nil {
			return err
		}
		// decodeAugment runs decode then augment on each task, no bus between.
		decodeAugment := func(tasks []messages.DecodeTask) (pipeRun, error) {
			return direct(ctx, len(tasks), func(ctx context.Context, i int) error {
				img, err := dec.Handle(ctx, tasks[i])
				if err != nil {
					return err
				}
				_, err = aug.Handle(ctx, img)
				return err
			})
		}
		noBus, err := decodeAugment(tasks)
		if err != nil {
			return err
		}
		noBusShard, err := decodeAugment(sh.members)
		if err != nil {
			return err
		}
		d, _ := imgdecode.New(imgdecode.Config{Gray: pc.gray})
		work := &workMeter{n: len(keys), fn: func(ctx context.Context, i int) error {
			return sampleWork(ctx, d, aug, i, pc.pngs[i])
		}}
		if err := work.measure(ctx); err != nil {
			return err
		}
		// The unsharded case and the sharded layouts in runs also run fused.
		// Image and view streams in files (bus.storage auto on an external
		// server); the default layout and order also in memory (auto on
		// the embedded server, as in supflow run).
		variants := []variant{{pc.name, tasks, batchSizes, true, bus.StorageFile}}
		for _, run := range shardRuns {
			o, err := sh.ordered(run)
			if err != nil {
				return err
			}
			name := pc.name + "_sharded"
			if run > 1 {
				name += fmt.Sprintf("_run%d", run)
			}
			variants = append(variants, variant{name, o, shardBatches[run], run > 1, bus.StorageFile})
			if run == feeder.DefaultShardRun {
				variants = append(variants, variant{name + "_memory", o, []int{defaultBatch}, true, bus.StorageMemory})
			}
		}
		var rows []busRow
		for _, v := range variants {
			for _, k := range v.batches {
				// Fused rows alternate with separate ones.
				modes := []bool{false}
				if k == defaultBatch && v.fused {
					modes = []bool{false, true, false, true}
				}
				for _, fused := range modes {
					name := v.name
					if fused {
						name += "_fused"
					}
					if !sel.match(fmt.Sprintf("%s_batch%d", name, k)) {
						continue
					}
					if err := work.measure(ctx); err != nil {
						return err
					}
					r, err := overBus(ctx, fmt.Sprintf("%s_batch%d", name, k), dec, aug, v.tasks, sizes, bus.Limits{Batch: k, Storage: v.storage}, fused)
					if err != nil {
						return fmt.Errorf("%s, batch %d: %w", name, k, err)
					}
					rows = append(rows, busRow{name, k, r})
					if k == 1 && pc.size == 32 && v.name == pc.name {
						hdr = r.hdrBytes
					}
				}
			}
		}
		med := work.median()
		for _, row := range rows {
			row.print(len(keys), med)
		}
		if err := warmCache(ctx, objects, pc.name, imgdecode.Config{Gray: pc.gray}, sh, aug, work.perSample()); err != nil {
			return err
		}
		fmt.Printf("%-34s %10.0f %14.3f %10s %8s  %s\n", pc.name+" no bus: S3 get + work", noBus.rate, 1e3*noBus.cpu/float64(len(keys)), "-", fmt.Sprintf("%.2fx", noBus.cpu/med.cpu), noBus.load)
		fmt.Printf("%-34s %10.0f %14.3f %10s %8s  %s\n", pc.name+" no bus: ranged get + work", noBusShard.rate, 1e3*noBusShard.cpu/float64(len(keys)), "-", fmt.Sprintf("%.2fx", noBusShard.cpu/med.cpu), noBusShard.load)
		fmt.Printf("%-34s %10.0f %14.3f %10s %8s  %s (median of %s)\n", pc.name+" work: decode + augment", med.rate, 1e3*work.perSample(), "-", "1.00x", med.load, work.spread())
	}
	fmt.Println("bus share = 1 - CPU(decode + augment alone)/CPU(pipeline), the work's CPU measured before every pipeline row and its median taken: JetStream server, nats.go, watermill, message encoding and the S3 GETs; vs work = CPU(pipeline)/CPU(decode + augment alone); samples/s with the bus is steady state at the sink (first to last view)")
	fmt.Println()
	return wire(hdr)
}

// sharded is a case's images packed into shards.
type sharded struct {
	entries []dataset.Entry
	members []messages.DecodeTask // in shard order
}

// packShards also puts each image into shards of shardMembers laid out as
// tar's (a 512-byte header before each member, zero padding to 512): a
// sharded data set's read path.
func packShards(ctx context.Context, objects *store.Client, name string, keys []string, files [][]byte) (sharded, error) {
	sh := sharded{entries: make([]dataset.Entry, len(files)), members: make([]messages.DecodeTask, len(files))}
	var shard []byte
	for i, b := range files {
		shardKey := fmt.Sprintf("%s/shards/train-%06d.tar", name, i/shardMembers)
		shard = append(shard, make([]byte, 512)...)
		sh.entries[i] = dataset.Entry{Key: keys[i], Class: "c", Split: "train", Size: int64(len(b)), Shard: shardKey, Offset: int64(len(shard))}
		sh.members[i] = sh.entries[i].Task(benchRun, 0, uint64(i))
		shard = append(shard, b...)
		shard = append(shard, make([]byte, -len(b)&511)...)
		if (i+1)%shardMembers == 0 || i == len(files)-1 {
			if err := objects.Put(ctx, shardKey, shard, store.PutOptions{}); err != nil {
				return sharded{}, err
			}
			shard = shard[:0]
		}
	}
	return sh, nil
}

// sizes is each sample's encoded size, by sample id.
func (sh sharded) sizes() []int64 {
	out := make([]int64, len(sh.entries))
	for i, e := range sh.entries {
		out[i] = e.Size
	}
	return out
}

// ordered is the sharded set's tasks in the feeder's order of epoch 0 for
// feeder.shard_run run (1: the full shuffle).
func (sh sharded) ordered(run int) ([]messages.DecodeTask, error) {
	f, err := feeder.New(feeder.Config{RunID: benchRun, Seed: 1, Epochs: 1, ShardRun: run}, dataset.List(sh.entries))
	if err != nil {
		return nil, err
	}
	out := make([]messages.DecodeTask, 0, len(sh.entries))
	for _, i := range f.Order(0) {
		out = append(out, f.Task(0, i))
	}
	return out, nil
}

// busRow is one pipeline row's run, printed once the case's work is
// priced.
type busRow struct {
	name  string // without _batch<k>
	batch int
	r     pipeRun
}

// print writes the row's table line and PIPELINE line for n samples,
// against the work's median run.
func (b busRow) print(n int, work pipeRun) {
	per, wper := b.r.cpu/float64(n), work.cpu/float64(n)
	share := 1 - wper/per
	fmt.Printf("%-34s %10.0f %14.3f %9.0f%% %7.2fx  %s\n", fmt.Sprintf("%s bus, batch %d", b.name, b.batch), b.r.rate, 1e3*per, 100*share, per/wper, b.r.load)
	// plumbing_us_per_sample is what the bus and S3 add to a sample in
	// absolute terms: vs_work rises when the work gets cheaper, even at
	// the same plumbing (docs/benchmarks.md, "PNG decode without per-image
	// allocation").
	fmt.Printf("PIPELINE case=%s_batch%d samples_per_s=%.0f cpu_ms_per_sample=%.3f bus_share=%.2f vs_work=%.2f work_ms_per_sample=%.3f plumbing_us_per_sample=%.1f alloc_kb_per_sample=%.1f work_alloc_kb_per_sample=%.1f gcs=%d work_gcs=%d\n",
		b.name, b.batch, b.r.rate, 1e3*per, share, per/wper, 1e3*wper, 1e6*(per-wper), b.r.alloc/1e3/float64(n), work.alloc/1e3/float64(n), b.r.gcs, work.gcs)
}

// pipeRun is one measured pipeline run.
type pipeRun struct {
	rate     float64 // samples/s
	cpu      float64 // process CPU seconds, user + system
	alloc    float64 // bytes allocated on the Go heap (runtime.MemStats.TotalAlloc)
	gcs      uint32  // garbage collections
	hdrBytes float64 // mean NATS header bytes of a ViewGroup message
	load     string
}

// direct runs fn for samples 0..n-1 on decodeWorkers goroutines.
func direct(ctx context.Context, n int, fn func(context.Context, int) error) (pipeRun, error) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, decodeWorkers)
	)
	settle()
	cpu0, heap0, start := cputime.Seconds(), heap(), time.Now()
	for w := range decodeWorkers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := fn(ctx, i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	sec := time.Since(start).Seconds()
	r := pipeRun{rate: float64(n) / sec, cpu: cputime.Seconds() - cpu0, load: loadavg()}
	r.alloc, r.gcs = heap().since(heap0)
	return r, errors.Join(errs...)
}

// stageRoutes are the decode and augment routes as cmd/supflow mounts
// them: separate, or fused as `supflow decode --augment` (one route,
// decodeWorkers workers: one per core, no images edge).
func stageRoutes(dec *decode.Stage, aug *augment.Stage, fused bool) []bus.Route {
	if fused {
		return []bus.Route{routes.Fused(benchRun, dec, aug, decodeWorkers)}
	}
	return []bus.Route{routes.Decode(benchRun, dec, decodeWorkers), routes.Augment(benchRun, aug, augmentWorkers)}
}

// overBus runs the stages as cmd/supflow mounts them (stageRoutes), on a
// fresh embedded JetStream, with a feeder publishing the tasks in messages
// as supflow's feeder cuts them (feeder.Split: limits.Batch tasks, fewer
// where their images' sizes, sizes[SampleID], reach max_payload), with the
// topology of limits; name is the row's (PIPELINE case=), for its CPU
// profile.
func overBus(ctx context.Context, name string, dec *decode.Stage, aug *augment.Stage, tasks []messages.DecodeTask, sizes []int64, limits bus.Limits, fused bool) (pipeRun, error) {
	// The server `supflow run` starts: the stages reach it in process.
	srv, cfg, err := bus.StartPrivate(ctx, "bench-data", 0)
	if err != nil {
		return pipeRun{}, err
	}
	defer srv.Close()
	b, err := bus.Connect(ctx, cfg, nil)
	if err != nil {
		return pipeRun{}, err
	}
	defer b.Close()
	if err := b.Provision(ctx, bus.Pipeline(limits, 480)); err != nil {
		return pipeRun{}, err
	}

	// At bus.batch 1, a plain subscriber sees view messages as published,
	// headers included (what counts toward max_payload, wire's header
	// size); 50 of 20,000 suffice. Batched rows have no tap: the CPU it
	// costs is in the row's, and there 50 messages were most of the
	// views (a gray28 row at batch 256 has 79 messages), copied once more
	// over a socket.
	var (
		tap             *nats.Conn
		tapMsgs, tapHdr atomic.Int64
	)
	if limits.Batch == 1 {
		tap, err = nats.Connect(srv.URL(), nats.UserInfo(cfg.User, cfg.Password))
		if err != nil {
			return pipeRun{}, err
		}
		defer tap.Close()
		sub, err := tap.Subscribe(messages.TopicViews, func(m *nats.Msg) {
			tapMsgs.Add(1)
			tapHdr.Add(int64(m.Size() - len(m.Subject) - len(m.Reply) - len(m.Data)))
		})
		if err != nil {
			return pipeRun{}, err
		}
		if err := sub.AutoUnsubscribe(50); err != nil {
			return pipeRun{}, err
		}
	}

	var (
		seen        atomic.Int64
		first, last atomic.Int64 // unix ns
		done        = make(chan struct{})
	)
	// Settled per sample, as cmd/supflow's trainer does.
	sink := bus.Sink("train", messages.TopicViews, messages.UnmarshalViewGroups,
		func(_ context.Context, d *bus.Delivery[[]messages.ViewGroup]) error {
			now := time.Now().UnixNano()
			first.CompareAndSwap(0, now)
			last.Store(now)
			for _, p := range d.Parts(len(d.Value), func(i int) ([]byte, error) { return messages.MarshalViewGroup(d.Value[i]) }) {
				if err := p.Ack(); err != nil {
					return err
				}
				if seen.Add(1) == int64(len(tasks)) {
					close(done)
				}
			}
			return nil
		})
	r, err := b.NewRouter(bus.RouterConfig{CloseTimeout: 5 * time.Second})
	if err != nil {
		return pipeRun{}, err
	}
	if err := r.Add(append(stageRoutes(dec, aug, fused), sink)...); err != nil {
		return pipeRun{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()

	stopProfile, err := sel.start(name)
	if err != nil {
		return pipeRun{}, err
	}
	defer stopProfile()
	settle()
	cpu0, heap0 := cputime.Seconds(), heap()
	pub := b.Publisher()
	defer pub.Close()
	feedErr := make(chan error, 1)
	ends := feeder.Split(len(tasks), limits.Batch, b.MaxPayload(), func(k int) int64 { return sizes[tasks[k].SampleID] })
	go func() {
		n := 0
		for _, end := range ends {
			p, err := messages.MarshalDecodeTasks(tasks[n:end])
			if err == nil {
				err = pub.Send(ctx, messages.TopicDecodeTasks, p)
			}
			if err != nil {
				feedErr <- err
				return
			}
			n = end
		}
		feedErr <- nil
	}()
	select {
	case <-done:
	case err := <-runErr:
		return pipeRun{}, fmt.Errorf("router stopped: %v", err)
	case <-time.After(5 * time.Minute):
		return pipeRun{}, fmt.Errorf("timed out with %d of %d views", seen.Load(), len(tasks))
	}
	cpu := cputime.Seconds() - cpu0
	alloc, gcs := heap().since(heap0)
	load := loadavg()
	if err := stopProfile(); err != nil {
		return pipeRun{}, err
	}
	if err := <-feedErr; err != nil {
		return pipeRun{}, err
	}
	stop()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return pipeRun{}, err
	}
	if tap != nil {
		if err := tap.Flush(); err != nil { // the tap's callbacks have run
			return pipeRun{}, err
		}
	}
	sec := time.Duration(last.Load() - first.Load()).Seconds()
	hdr := float64(tapHdr.Load()) / float64(max(tapMsgs.Load(), 1))
	return pipeRun{rate: float64(len(tasks)-1) / sec, cpu: cpu, alloc: alloc, gcs: gcs, hdrBytes: hdr, load: load}, nil
}

// wire prints bytes per view on the wire (ViewGroup encoding plus the NATS
// headers the bus sets, measured above) against the raw pixels.
func wire(hdr float64) error {
	fmt.Printf("Wire: bytes per view (ViewGroup payload + %.0f B of NATS headers, over n_views=2) vs raw pixels; target <= 1.05x\n", hdr)
	for _, s := range []struct{ h, c int }{{32, 3}, {28, 1}, {224, 3}} {
		vg := messages.ViewGroup{RunID: benchRun, Epoch: 1, SampleID: 123456, Label: 7, Split: "train",
			NViews: 2, Height: uint32(s.h), Width: uint32(s.h), Channels: uint8(s.c), Pixels: make([]byte, 2*s.h*s.h*s.c)}
		b, err := messages.MarshalViewGroup(vg)
		if err != nil {
			return err
		}
		raw := float64(s.h * s.h * s.c)
		perView := (float64(len(b)) + hdr) / 2
		ratio := perView / raw
		met := "met"
		if ratio > 1.05 {
			met = "MISSED"
		}
		name := fmt.Sprintf("wire_%dx%dx%d", s.h, s.h, s.c)
		fmt.Printf("%-20s %9.0f B/view %9.0f raw %6.3fx %s (payload alone %.3fx)\n", name, perView, raw, ratio, met, float64(len(b))/2/raw)
		fmt.Printf("BENCH case=%s go=%.0f ref=%.0f unit=bytes/view ratio=%.3f\n", name, perView, raw, ratio)
	}
	return nil
}

// heapUse is the Go heap's allocation counters at one time: most of the
// bus's garbage and its collector's CPU show here.
type heapUse struct {
	total uint64
	gcs   uint32
}

func heap() heapUse {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapUse{m.TotalAlloc, m.NumGC}
}

// since is the bytes allocated and the collections between h0 and h.
func (h heapUse) since(h0 heapUse) (float64, uint32) {
	return float64(h.total - h0.total), h.gcs - h0.gcs
}

// s3Disk (-s3 disk) keeps the embedded S3's objects in files, as `supflow
// run` does, rather than in memory: the bench's heap then holds no
// objects, and each GET opens and reads a file.
var s3Disk bool

// embeddedBucket starts an embedded S3 endpoint with a bucket "bench" and
// returns a client of it and the endpoint's close.
func embeddedBucket(ctx context.Context) (*store.Client, func() error, error) {
	dir := ""
	if s3Disk {
		d, err := os.MkdirTemp("", "bench-data-s3-")
		if err != nil {
			return nil, nil, err
		}
		dir = d
	}
	closeAll := func(s3 *store.Embedded) error {
		var err error
		if s3 != nil {
			err = s3.Close()
		}
		if dir != "" {
			err = errors.Join(err, os.RemoveAll(dir))
		}
		return err
	}
	s3, err := store.StartEmbedded(ctx, dir)
	if err != nil {
		return nil, nil, errors.Join(err, closeAll(nil))
	}
	objects, err := store.New(s3.Config("bench"))
	if err == nil {
		err = objects.EnsureBucket(ctx)
	}
	if err != nil {
		return nil, nil, errors.Join(err, closeAll(s3))
	}
	return objects, func() error { return closeAll(s3) }, nil
}

// sampleWork is the work of one sample without bus and S3: decode the
// encoded image, then augment it as sample i.
func sampleWork(ctx context.Context, d *imgdecode.Decoder, aug *augment.Stage, i int, encoded []byte) error {
	m, err := d.Decode(encoded)
	if err != nil {
		return err
	}
	_, err = aug.Handle(ctx, messages.Image{RunID: benchRun, SampleID: uint64(i), Height: uint32(m.Height), Width: uint32(m.Width), Channels: uint8(m.Channels), Pixels: m.Pix})
	return err
}
