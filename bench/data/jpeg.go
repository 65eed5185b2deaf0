package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"

	"github.com/supflow/supflow/bus"
	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/internal/cputime"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/stages/augment"
	"github.com/supflow/supflow/stages/decode"
	"github.com/supflow/supflow/store"
	"github.com/supflow/supflow/transform"
)

// The ImageNet-like case: JPEGs of ImageNet-1k's typical size (shorter
// side 375-500 px, about 110 KB) to two 224x224 views, with the decode
// and augment settings of configs/imagenet-folder.yaml.
const (
	jpegCase     = "jpeg224"
	jpegShortMin = 375
	jpegShortMax = 500
	jpegResize   = 256 // decode.resize_shorter of the preset
	jpegViewSide = 224 // augment.size of the preset
)

// imagenetJPEGs cuts n JPEGs from the photos: a random crop of aspect 3:4
// to 4:3 of each photo in turn, resized (antialiased) to a shorter side
// of 375-500 px and encoded at the JPEG quality (70-100) whose size is
// nearest a target drawn from 70-150 KB: these photos (wallpapers, many of
// them smooth) compress better than ImageNet's, and the Huffman decoding
// of every coefficient, most of a decode's time, grows with the bytes.
func imagenetJPEGs(photos [][]byte, n int) (files [][]byte, quality []int, err error) {
	d, err := imgdecode.New(imgdecode.Config{})
	if err != nil {
		return nil, nil, err
	}
	rng := rand.New(rand.NewPCG(3, 224))
	var (
		rs transform.Resizer
		m  transform.Image
	)
	full := make([]transform.Pixels, 0, len(photos))
	for _, p := range photos {
		img, err := d.Decode(p)
		if err != nil {
			return nil, nil, err
		}
		full = append(full, transform.Pixels{H: img.Height, W: img.Width, C: img.Channels, Pix: img.Pix})
	}
	for i := range n {
		p := full[i%len(full)]
		ratio := math.Exp(math.Log(0.75) + rng.Float64()*math.Log(4.0/3/0.75)) // w/h
		short := jpegShortMin + rng.IntN(jpegShortMax-jpegShortMin+1)
		w, h := short, int(float64(short)/ratio)
		if ratio > 1 {
			w, h = int(float64(short)*ratio), short
		}
		// The largest crop of that aspect, or a smaller one, anywhere.
		cw, ch := p.W, int(float64(p.W)/ratio)
		if ch > p.H {
			cw, ch = int(float64(p.H)*ratio), p.H
		}
		s := 0.5 + 0.5*rng.Float64()
		cw, ch = max(int(float64(cw)*s), 1), max(int(float64(ch)*s), 1)
		box := transform.Box{Top: rng.IntN(p.H - ch + 1), Left: rng.IntN(p.W - cw + 1), Height: ch, Width: cw}
		if err := rs.ResizedCrop(&m, p, box, h, w, true); err != nil {
			return nil, nil, err
		}
		pix, err := m.AppendBytes(nil)
		if err != nil {
			return nil, nil, err
		}
		rgba := image.NewRGBA(image.Rect(0, 0, w, h))
		for j := range w * h {
			copy(rgba.Pix[4*j:], pix[3*j:3*j+3])
			rgba.Pix[4*j+3] = 255
		}
		target := 70_000 + rng.IntN(80_001)
		lo, hi := 70, 100
		var (
			best    []byte
			bestQ   int
			reached bool
		)
		for lo <= hi { // the least quality reaching target, or 100
			q := (lo + hi) / 2
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, rgba, &jpeg.Options{Quality: q}); err != nil {
				return nil, nil, err
			}
			if buf.Len() >= target {
				best, bestQ, reached, hi = buf.Bytes(), q, true, q-1
			} else {
				if !reached { // q grows until then: the best so far
					best, bestQ = buf.Bytes(), q
				}
				lo = q + 1
			}
		}
		files, quality = append(files, best), append(quality, bestQ)
	}
	return files, quality, nil
}

// jpegPipeline measures the ImageNet-like case: decode and augment per
// core (CPU time of one goroutine's loop), then the pipeline over the bus
// on 2 cores, and splits the pipeline's CPU per sample into decode,
// augment, S3 and bus.
func jpegPipeline(photos [][]byte, n int) error {
	files, quality, err := imagenetJPEGs(photos, n)
	if err != nil {
		return fmt.Errorf("%s: making the JPEGs: %w", jpegCase, err)
	}
	sizes := make([]int, len(files))
	total := 0
	for i, f := range files {
		sizes[i], total = len(f), total+len(f)
	}
	sort.Ints(sizes)
	sort.Ints(quality)
	fmt.Printf("%s: %d JPEGs cut from %d photos, shorter side %d-%d px, %.0f KB mean (%.0f-%.0f KB, median %.0f), quality %d-%d (median %d); decode resize_shorter %d, 2 views of %dx%d (configs/imagenet-folder.yaml)\n",
		jpegCase, len(files), len(photos), jpegShortMin, jpegShortMax, float64(total)/float64(len(files))/1e3,
		float64(sizes[0])/1e3, float64(sizes[len(sizes)-1])/1e3, float64(sizes[len(sizes)/2])/1e3,
		quality[0], quality[len(quality)-1], quality[len(quality)/2], jpegResize, jpegViewSide, jpegViewSide)

	ctx := context.Background()
	objects, closeS3, err := embeddedBucket(ctx)
	if err != nil {
		return err
	}
	defer closeS3()
	tasks := make([]messages.DecodeTask, len(files))
	keys := make([]string, len(files))
	bySample := make([]int64, len(files))
	for i, b := range files {
		bySample[i] = int64(len(b))
		keys[i] = fmt.Sprintf("%s/%05d.jpg", jpegCase, i)
		if err := objects.Put(ctx, keys[i], b, store.PutOptions{}); err != nil {
			return err
		}
		tasks[i] = messages.DecodeTask{RunID: benchRun, SampleID: uint64(i), Key: keys[i], Label: -1, Split: "train"}
	}
	dcfg := imgdecode.Config{ResizeShorter: jpegResize}
	dec, err := decode.New(decode.Config{Config: dcfg}, decode.Deps{Objects: objects, IsNotFound: func(err error) bool { return errors.Is(err, store.ErrNotFound) }})
	if err != nil {
		return err
	}
	aug, err := augment.New(augment.Config{Seed: 1, Config: transform.Config{Size: jpegViewSide}})
	if err != nil {
		return err
	}
	d, err := imgdecode.New(dcfg)
	if err != nil {
		return err
	}

	// Per core: one goroutine, process CPU time (its GC included).
	imgs := make([]messages.Image, len(files))
	decCPU, err := perCore(len(files), func(i int) error {
		m, err := d.Decode(files[i])
		imgs[i] = messages.Image{RunID: benchRun, SampleID: uint64(i), Height: uint32(m.Height), Width: uint32(m.Width), Channels: uint8(m.Channels), Pixels: m.Pix}
		return err
	})
	if err != nil {
		return err
	}
	augCPU, err := perCore(len(files), func(i int) error {
		_, err := aug.Handle(ctx, imgs[i])
		return err
	})
	if err != nil {
		return err
	}
	// On 2 cores: the work alone, with the S3 GETs, then over the bus.
	work := &workMeter{n: len(files), fn: func(ctx context.Context, i int) error {
		return sampleWork(ctx, d, aug, i, files[i])
	}}
	if err := work.measure(ctx); err != nil {
		return err
	}
	withS3, err := direct(ctx, len(files), func(ctx context.Context, i int) error {
		img, err := dec.Handle(ctx, tasks[i])
		if err != nil {
			return err
		}
		_, err = aug.Handle(ctx, img)
		return err
	})
	if err != nil {
		return err
	}
	per := func(cpu float64) float64 { return 1e3 * cpu / float64(len(files)) }
	fmt.Printf("%s per core: decode %.0f img/s (%.2f ms), augment %.0f samples/s (%.2f ms per 2 views)  %s\n",
		jpegCase, 1e3/decCPU, decCPU, 1e3/augCPU, augCPU, loadavg())
	// Separate decode and augment workers, then fused ones (decode
	// --augment), alternating, twice each; the work measured before each.
	// Image and view streams in files (bus.storage auto on an external
	// server), at the default batch also in memory (auto on the embedded
	// server, as in supflow run).
	var rows []busRow
	for range 2 {
		for _, l := range []bus.Limits{{Batch: 1, Storage: bus.StorageFile}, {Batch: defaultBatch, Storage: bus.StorageFile}, {Batch: defaultBatch, Storage: bus.StorageMemory}} {
			for _, fused := range []bool{false, true} {
				name := jpegCase
				if l.Storage == bus.StorageMemory {
					name += "_memory"
				}
				if fused {
					name += "_fused"
				}
				k := l.Batch
				row := fmt.Sprintf("%s_batch%d", name, k)
				if !sel.match(row) {
					continue
				}
				if err := work.measure(ctx); err != nil {
					return err
				}
				r, err := overBus(ctx, row, dec, aug, tasks, bySample, l, fused)
				if err != nil {
					return fmt.Errorf("%s, batch %d: %w", name, k, err)
				}
				rows = append(rows, busRow{name, k, r})
			}
		}
	}
	med := work.median()
	fmt.Printf("%-34s %10.0f %14.3f %10s %8s  %s (median of %s)\n", jpegCase+" work: decode + augment", med.rate, per(med.cpu), "-", "1.00x", med.load, work.spread())
	fmt.Printf("%-34s %10.0f %14.3f %10s %8s  %s\n", jpegCase+" no bus: S3 get + work", withS3.rate, per(withS3.cpu), "-", fmt.Sprintf("%.2fx", withS3.cpu/med.cpu), withS3.load)
	s3ms := per(withS3.cpu) - per(med.cpu)
	for _, row := range rows {
		row.print(len(files), med)
		fmt.Printf("PARTS case=%s_batch%d decode_per_core=%.0f augment_per_core=%.0f s3_per_core=%.0f bus_per_core=%.0f\n",
			row.name, row.batch, 1e3/decCPU, 1e3/augCPU, rate(s3ms), rate(per(row.r.cpu)-per(withS3.cpu)))
	}
	fmt.Printf("(per core: samples per CPU-second of each part alone; s3 = CPU(S3 get + work) - CPU(work), bus = CPU(pipeline) - CPU(S3 get + work) per sample, GOMAXPROCS=%d)\n", runtime.GOMAXPROCS(0))
	// The same JPEGs in shards, decode cache warm: decoded shards at
	// resize_shorter's size.
	sh, err := packShards(ctx, objects, jpegCase, keys, files)
	if err != nil {
		return err
	}
	if err := warmCache(ctx, objects, jpegCase, dcfg, sh, aug, work.perSample()); err != nil {
		return err
	}
	fmt.Println()
	return nil
}

// rate is samples per CPU-second for ms of CPU per sample ("inf" when
// the difference is within noise of 0).
func rate(ms float64) float64 {
	if ms <= 0 {
		return math.Inf(1)
	}
	return 1e3 / ms
}

// perCore runs fn for 0..n-1 on this goroutine and returns the process
// CPU milliseconds per call.
func perCore(n int, fn func(int) error) (float64, error) {
	runtime.GC()
	cpu0 := cputime.Seconds()
	for i := range n {
		if err := fn(i); err != nil {
			return 0, err
		}
	}
	return 1e3 * (cputime.Seconds() - cpu0) / float64(n), nil
}
