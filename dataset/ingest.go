package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/store"
)

// Bucket is what ingest needs from object storage; *store.Client has it.
type Bucket interface {
	Put(ctx context.Context, key string, data []byte, opts store.PutOptions) error
	Get(ctx context.Context, key string) ([]byte, error)
	Stat(ctx context.Context, key string) (store.ObjectInfo, error)
}

// MetaSHA256 is the user-metadata key holding an object's hex SHA-256; a
// re-run skips objects whose stored value matches.
const MetaSHA256 = "sha256"

// Image formats ingest can write.
const (
	FormatPNG  = "png"
	FormatJPEG = "jpeg"
)

// Limits of Options, by default those of the decode stage (so that ingest
// never keeps an image decode would refuse) and a file size that bounds
// what reading one image may cost.
const (
	// DefaultMaxPixels is decode's default decode.max_pixels.
	DefaultMaxPixels = imgdecode.DefaultMaxPixels
	// DefaultMaxObjectBytes is decode's default decode.max_object_bytes.
	DefaultMaxObjectBytes = imgdecode.DefaultMaxObjectBytes
	// DefaultMaxFileBytes bounds a source file: 256 MiB, more than a
	// DefaultMaxPixels RGBA image stored uncompressed.
	DefaultMaxFileBytes = 256 << 20
)

// Options tune Ingest; the zero value writes PNG at the bucket root.
type Options struct {
	Prefix      string       // key prefix of the data set, "" for the root
	Format      string       // FormatPNG (default, lossless) or FormatJPEG
	JPEGQuality int          // 1..100, default 95
	Limit       Selection    // which images of each split are ingested (Select); zero = all
	Concurrency int          // parallel encode+upload workers, default 8
	StatsSplit  string       // split for mean/std, default "train" (else the first split)
	Logger      *slog.Logger // nil discards

	// MaxPixels refuses an image with more pixels (width*height, read from
	// its header before it is decoded): pass decode.max_pixels, so that
	// the data set holds only images decode will take. Default
	// DefaultMaxPixels, decode's default.
	MaxPixels int64
	// MaxObjectBytes refuses an image whose encoded object would be
	// larger: pass decode.max_object_bytes. Default DefaultMaxObjectBytes,
	// decode's default.
	MaxObjectBytes int64
	// MaxFileBytes refuses a source file larger than this, unread.
	// Default DefaultMaxFileBytes.
	MaxFileBytes int64
	// ShardBytes, when not 0, packs the images into tar shards of about
	// this many bytes, one split each, under <prefix>/shards/ (see packer)
	// instead of one object per image; the manifest entries then name
	// their shard and offset (Entry.Shard). Each split's images are read,
	// packed and listed in the manifest in a mixed order
	// (ReadOptions.Mix), not in source order: the feeder feeds a shard's
	// neighbours together (feeder.shard_run), and a source read class by
	// class would make them one class. A loose ingest keeps source order,
	// which the feeder's full shuffle makes irrelevant, so the manifests of
	// loose data sets are what they were.
	ShardBytes int64
	// Force reads, encodes and compares every image even when the data
	// set under Prefix was built from an unchanged source with the same
	// options (Report.Unchanged): an object changed or deleted in the
	// bucket since is then written again.
	Force bool
}

func (o *Options) setDefaults() {
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	if o.Format == "" {
		o.Format = FormatPNG
	}
	if o.JPEGQuality == 0 {
		o.JPEGQuality = 95
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	if o.MaxObjectBytes == 0 {
		o.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.StatsSplit == "" {
		o.StatsSplit = "train"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o Options) validate() error {
	switch {
	case o.Format != FormatPNG && o.Format != FormatJPEG:
		return fmt.Errorf("%w: format %q is not png or jpeg", ErrSource, o.Format)
	case o.JPEGQuality < 1 || o.JPEGQuality > 100:
		return fmt.Errorf("%w: jpeg quality %d is not in 1..100", ErrSource, o.JPEGQuality)
	case o.Limit.negative() || o.Concurrency < 0:
		return fmt.Errorf("%w: negative limit or concurrency", ErrSource)
	case o.MaxPixels < 0 || o.MaxObjectBytes < 0 || o.MaxFileBytes < 0 || o.ShardBytes < 0:
		return fmt.Errorf("%w: negative size limit", ErrSource)
	}
	if o.Prefix != "" {
		if err := store.ValidKey(o.Prefix); err != nil {
			return fmt.Errorf("prefix: %w", err)
		}
	}
	return nil
}

// Report says what an ingest did; it is also written, as JSON, to
// <prefix>/ingest-report.json (ReportKey), and WriteSummary prints it.
type Report struct {
	Source  string `json:"source"` // the source's Name
	Prefix  string `json:"prefix"`
	Images  int    `json:"images"`           // entries in the manifest
	Written int    `json:"written"`          // images uploaded
	Skipped int    `json:"already_stored"`   // images already stored with the same SHA-256
	Shards  int    `json:"shards,omitempty"` // shards of a sharded ingest (Options.ShardBytes)
	// Refused counts images left out of the data set because decode would
	// refuse them (over Options.MaxPixels or MaxObjectBytes) or their file
	// is over Options.MaxFileBytes; each is logged with its reason.
	Refused int `json:"refused"`
	// LeftOut counts the entries of the source's tree left out, by kind
	// (Skip.Kind: files that are empty or do not decode, bad names, links,
	// hidden or nested entries, other files); each is logged.
	LeftOut map[string]int `json:"left_out"`
	// LeftOutFiles names the first maxRefusalsReported of them, then of
	// the refused images (kind "refused"), with the reason.
	LeftOutFiles []Skip `json:"left_out_files,omitempty"`
	Info         Info   `json:"info"`
	// Fingerprint identifies the source's files and the options the data
	// set was built from (ingestFingerprint; Info.Fingerprint too).
	Fingerprint string `json:"fingerprint"`
	// Unchanged says that this call found the data set already built
	// with the same fingerprint and read and wrote nothing else: the rest
	// of the report is the stored one, from the call that built it, and
	// Entries is nil (Load reads the manifest).
	Unchanged bool      `json:"unchanged"`
	Ingested  time.Time `json:"ingested"` // when the data set was built
	// Entries is the manifest, in the order read (source order, or for
	// a sharded ingest the mixed order of its shards); not part of the
	// JSON.
	Entries []Entry `json:"-"`
}

// SkipRefused is the Skip.Kind of a refused image in Report.LeftOutFiles.
const SkipRefused = "refused"

// leftOut records one entry left out.
func (r *Report) leftOut(s Skip) {
	if s.Kind != SkipRefused {
		r.LeftOut[s.Kind]++
	}
	if len(r.LeftOutFiles) < maxRefusalsReported {
		r.LeftOutFiles = append(r.LeftOutFiles, s)
	}
}

// job is one sample with its position in the order read.
type job struct {
	idx int
	s   Sample
}

// result is one uploaded (or skipped, or refused) image.
type result struct {
	idx     int
	path    string // <split>/<class>/<id>, for a refusal
	entry   Entry
	h, w    int
	skipped bool
	refused error  // left out of the data set: ErrRefused
	data    []byte // the encoded image, for the packer of a sharded ingest
}

// stats accumulates exact integer pixel sums, so the result does not depend
// on the order the workers finish in.
type stats struct {
	n          uint64
	sum, sumSq [3]uint64
}

func (s *stats) add(img image.Image) {
	switch m := img.(type) {
	case *image.Gray:
		for y := range m.Rect.Dy() {
			for _, v := range m.Pix[y*m.Stride : y*m.Stride+m.Rect.Dx()] {
				s.sum[0] += uint64(v)
				s.sumSq[0] += uint64(v) * uint64(v)
			}
		}
	case *image.NRGBA:
		for y := range m.Rect.Dy() {
			row := m.Pix[y*m.Stride : y*m.Stride+4*m.Rect.Dx()]
			for i := 0; i < len(row); i += 4 {
				for c := range 3 {
					v := uint64(row[i+c])
					s.sum[c] += v
					s.sumSq[c] += v * v
				}
			}
		}
	}
	s.n += uint64(img.Bounds().Dx() * img.Bounds().Dy())
}

func (s *stats) merge(o stats) {
	s.n += o.n
	for c := range 3 {
		s.sum[c] += o.sum[c]
		s.sumSq[c] += o.sumSq[c]
	}
}

func (s stats) meanStd(channels int) (mean, std []float64) {
	for c := range channels {
		m := float64(s.sum[c]) / float64(s.n) / 255
		v := float64(s.sumSq[c])/float64(s.n)/(255*255) - m*m
		mean = append(mean, m)
		std = append(std, math.Sqrt(max(v, 0)))
	}
	return mean, std
}

// pngEncoder reuses its deflate state across images: allocating it per
// image dominated the ingest of small images.
var pngEncoder = png.Encoder{BufferPool: &pngPool{}}

type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

// Ingest reads every sample of src, writes each image to
// <prefix>/<split>/<class>/<id>.<ext> with its SHA-256 in the object
// metadata, then writes info.json, classes.json, the manifest and the
// report (ingest-report.json). Entries of the source's tree it leaves out
// (files that do not decode, links, stray files: ReadOptions.Skip) and
// images over a limit are counted and named in the report; they never stop
// the ingest.
//
// It is idempotent and cheap to repeat: when the source's files (Stamp)
// and the options give the fingerprint the stored info.json and report
// carry, it returns the stored report with Unchanged set, having read no
// image and written nothing (Options.Force reads on). Otherwise objects
// already stored with the same SHA-256 are not uploaded again, and the
// manifest, classes.json and info.json come out byte for byte the same.
func Ingest(ctx context.Context, b Bucket, src Source, opts Options) (Report, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return Report{}, err
	}
	fingerprint, err := ingestFingerprint(ctx, src, opts)
	if err != nil {
		return Report{}, err
	}
	if !opts.Force {
		var rep Report
		if raw, ok := storedReport(ctx, b, opts.Prefix, fingerprint); ok && json.Unmarshal(raw, &rep) == nil {
			rep.Unchanged = true
			opts.Logger.InfoContext(ctx, "ingest unchanged", "source", src.Name(), "images", rep.Images, "fingerprint", fingerprint[:12])
			return rep, nil
		}
	}
	classes := src.Classes()
	channels := src.Channels()
	if channels != 1 && channels != 3 {
		return Report{}, fmt.Errorf("%w: source has %d channels", ErrSource, channels)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	jobs := make(chan job, 2*opts.Concurrency)
	var (
		mu      sync.Mutex
		results []result
		perSplt = map[string]*stats{}
		wg      sync.WaitGroup
	)
	// A sharded ingest hands every result to the packer, which needs them
	// in the order read: it holds those that come early until their turn.
	// window bounds how many images are between the reader and the packer
	// (encoded or in the encoders), so one slow image never lets the rest
	// of the source pile up in memory behind it.
	var (
		ordered chan result
		window  chan struct{}
		pack    = &packer{b: b, opts: opts}
		packed  = make(chan struct{})
	)
	keep := func(r result) {
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	}
	if opts.ShardBytes > 0 {
		ordered = make(chan result, opts.Concurrency)
		window = make(chan struct{}, 4*opts.Concurrency)
		go func() {
			defer close(packed)
			early := map[int]result{}
			next := 0
			for r := range ordered {
				early[r.idx] = r
				for ; ; next++ {
					r, ok := early[next]
					if !ok {
						break
					}
					delete(early, next)
					<-window
					if ctx.Err() != nil {
						continue // failed: drain only
					}
					if err := pack.add(ctx, r); err != nil {
						cancel(err)
					}
				}
			}
			if ctx.Err() == nil {
				if err := pack.flush(ctx); err != nil {
					cancel(err)
				}
			}
		}()
		keep = func(r result) { ordered <- r }
	} else {
		close(packed)
	}
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]*stats{}
			for j := range jobs {
				r, err := ingestOne(ctx, b, j, classes, opts)
				if err != nil {
					cancel(err)
					continue // drain so the producer never blocks
				}
				if r.refused != nil {
					// Statistics come only from samples that will train.
					opts.Logger.WarnContext(ctx, "image left out of the data set", "split", j.s.Split, "id", j.s.ID, "reason", r.refused)
					keep(r)
					continue
				}
				st := local[j.s.Split]
				if st == nil {
					st = &stats{}
					local[j.s.Split] = st
				}
				st.add(j.s.Image)
				keep(r)
			}
			mu.Lock()
			for split, st := range local {
				if perSplt[split] == nil {
					perSplt[split] = &stats{}
				}
				perSplt[split].merge(*st)
			}
			mu.Unlock()
		}()
	}
	var splitOrder []string
	idx := 0
	rep := Report{Source: src.Name(), Prefix: opts.Prefix, LeftOut: map[string]int{}, Fingerprint: fingerprint, Ingested: time.Now().UTC().Truncate(time.Second)}
	read := ReadOptions{Limit: opts.Limit, MaxPixels: opts.MaxPixels, MaxFileBytes: opts.MaxFileBytes, Mix: opts.ShardBytes > 0, Skip: func(s Skip) {
		// Called by Samples, from this goroutine alone.
		opts.Logger.WarnContext(ctx, "left out of the data set", "path", s.Path, "kind", s.Kind, "reason", s.Reason)
		rep.leftOut(s)
	}}
	srcErr := src.Samples(ctx, read, func(s Sample) error {
		if len(splitOrder) == 0 || splitOrder[len(splitOrder)-1] != s.Split {
			splitOrder = append(splitOrder, s.Split)
		}
		if window != nil {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		select {
		case jobs <- job{idx, s}:
			idx++
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(jobs)
	wg.Wait()
	if ordered != nil {
		close(ordered)
	}
	<-packed
	if ordered != nil {
		results = pack.results
	}
	if err := context.Cause(ctx); err != nil {
		return Report{}, fmt.Errorf("dataset: ingest: %w", err)
	}
	if srcErr != nil {
		return Report{}, fmt.Errorf("dataset: ingest: %w", srcErr)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].idx < results[j].idx })
	kept := results[:0]
	for _, r := range results {
		if r.refused != nil {
			rep.Refused++
			rep.leftOut(Skip{Path: r.path, Kind: SkipRefused, Reason: r.refused.Error()})
			continue
		}
		kept = append(kept, r)
	}
	if len(kept) == 0 {
		return rep, fmt.Errorf("%w: no samples (%d refused, left out %v)", ErrSource, rep.Refused, rep.LeftOut)
	}
	if opts.ShardBytes > 0 {
		// A shard is stored or skipped whole: its images count as one.
		rep.Written, rep.Skipped, rep.Shards = pack.written, pack.skipped, pack.shards
	}
	return finish(ctx, b, src, opts, rep, kept, perSplt, splitOrder)
}

// ingestOne encodes one sample and uploads it unless it is already stored
// or refused (over a limit of opts: result.refused).
func ingestOne(ctx context.Context, b Bucket, j job, classes []string, opts Options) (result, error) {
	s := j.s
	if s.Label < 0 || s.Label >= len(classes) {
		return result{}, fmt.Errorf("%w: sample %s/%s: label %d out of %d classes", ErrSource, s.Split, s.ID, s.Label, len(classes))
	}
	path := s.Split + "/" + classes[s.Label] + "/" + s.ID
	if s.Refused != nil {
		return result{idx: j.idx, path: path, refused: s.Refused}, nil
	}
	if bnd := s.Image.Bounds(); int64(bnd.Dx())*int64(bnd.Dy()) > opts.MaxPixels {
		// A source that does not check its headers (fixed-size records).
		return result{idx: j.idx, path: path, refused: fmt.Errorf("%w: %s/%s: %dx%d is over %d pixels", ErrRefused, s.Split, s.ID, bnd.Dx(), bnd.Dy(), opts.MaxPixels)}, nil
	}
	ext, ctype := ".png", "image/png"
	if opts.Format == FormatJPEG {
		ext, ctype = ".jpg", "image/jpeg"
	}
	// Joined by hand, not path.Join, so a ".." in a class name or ID is
	// refused rather than cleaned away.
	key := s.Split + "/" + classes[s.Label] + "/" + s.ID + ext
	if opts.Prefix != "" {
		key = opts.Prefix + "/" + key
	}
	if err := store.ValidKey(key); err != nil {
		return result{}, fmt.Errorf("dataset: sample %d (%s): %w", j.idx, s.ID, err)
	}
	var buf bytes.Buffer
	var err error
	if opts.Format == FormatJPEG {
		err = jpeg.Encode(&buf, s.Image, &jpeg.Options{Quality: opts.JPEGQuality})
	} else {
		err = pngEncoder.Encode(&buf, s.Image)
	}
	if err != nil {
		return result{}, fmt.Errorf("dataset: encode %s: %w", key, err)
	}
	if int64(buf.Len()) > opts.MaxObjectBytes {
		return result{idx: j.idx, path: path, refused: fmt.Errorf("%w: %s: %d bytes encoded, over the object limit of %d", ErrRefused, key, buf.Len(), opts.MaxObjectBytes)}, nil
	}
	sum := sha256.Sum256(buf.Bytes())
	digest := hex.EncodeToString(sum[:])
	bnd := s.Image.Bounds()
	if opts.ShardBytes > 0 {
		// The packer stores it, in its shard.
		return result{idx: j.idx, h: bnd.Dy(), w: bnd.Dx(), data: buf.Bytes(), entry: Entry{
			Key: key, Label: int32(s.Label), Class: classes[s.Label], Split: s.Split,
			Size: int64(buf.Len()), SHA256: digest,
		}}, nil
	}
	r := result{
		idx: j.idx,
		h:   bnd.Dy(),
		w:   bnd.Dx(),
		entry: Entry{
			Key: key, Label: int32(s.Label), Class: classes[s.Label], Split: s.Split,
			Size: int64(buf.Len()), SHA256: digest,
		},
	}
	info, err := b.Stat(ctx, key)
	switch {
	case err == nil && info.Metadata[MetaSHA256] == digest && info.Size == int64(buf.Len()):
		r.skipped = true
		return r, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return result{}, fmt.Errorf("dataset: stat %s: %w", key, err)
	}
	err = b.Put(ctx, key, buf.Bytes(), store.PutOptions{ContentType: ctype, Metadata: map[string]string{MetaSHA256: digest}})
	if err != nil {
		return result{}, fmt.Errorf("dataset: put %s: %w", key, err)
	}
	return r, nil
}

// finish checks the results, in the order read, and writes the data set
// files and the report.
func finish(ctx context.Context, b Bucket, src Source, opts Options, rep Report, results []result, perSplit map[string]*stats, splitOrder []string) (Report, error) {
	rep.Entries = make([]Entry, len(results))
	rep.Images = len(results)
	info := Info{
		Source:      src.Name(),
		Format:      opts.Format,
		Channels:    src.Channels(),
		Counts:      map[string]int{},
		Classes:     len(src.Classes()),
		Height:      results[0].h,
		Width:       results[0].w,
		Fingerprint: rep.Fingerprint,
	}
	keys := make(map[string]bool, len(results))
	for i, r := range results {
		if keys[r.entry.Key] {
			return Report{}, fmt.Errorf("%w: two samples map to key %s", ErrSource, r.entry.Key)
		}
		keys[r.entry.Key] = true
		rep.Entries[i] = r.entry
		info.Counts[r.entry.Split]++
		if r.h != info.Height || r.w != info.Width {
			info.Height, info.Width = 0, 0 // sizes vary
		}
		switch {
		case opts.ShardBytes > 0: // counted per shard by the packer
		case r.skipped:
			rep.Skipped++
		default:
			rep.Written++
		}
	}
	info.StatsSplit = opts.StatsSplit
	for i := 0; perSplit[info.StatsSplit] == nil && i < len(splitOrder); i++ {
		info.StatsSplit = splitOrder[i] // the first split with an image kept
	}
	info.Mean, info.Std = perSplit[info.StatsSplit].meanStd(info.Channels)
	for c := range info.Std {
		if info.Std[c] == 0 {
			// A constant channel would divide by zero when normalizing.
			return Report{}, fmt.Errorf("%w: channel %d of split %s is constant", ErrSource, c, info.StatsSplit)
		}
	}
	rep.Info = info

	var manifest bytes.Buffer
	if err := WriteManifest(&manifest, rep.Entries); err != nil {
		return Report{}, err
	}
	classesJSON, err := marshalIndent(src.Classes())
	if err != nil {
		return Report{}, fmt.Errorf("dataset: classes: %w", err)
	}
	infoJSON, err := marshalIndent(info)
	if err != nil {
		return Report{}, fmt.Errorf("dataset: info: %w", err)
	}
	repJSON, err := marshalIndent(rep)
	if err != nil {
		return Report{}, fmt.Errorf("dataset: report: %w", err)
	}
	for _, f := range []struct {
		key, ctype string
		data       []byte
	}{
		// info.json first and the report last, each with the fingerprint:
		// both match only when all four are this call's (storedReport).
		{InfoKey(opts.Prefix), "application/json", infoJSON},
		{ClassesKey(opts.Prefix), "application/json", classesJSON},
		// The manifest after the others it needs: its presence means the
		// data set is complete.
		{ManifestKey(opts.Prefix), "application/x-ndjson", manifest.Bytes()},
		{ReportKey(opts.Prefix), "application/json", repJSON},
	} {
		if err := b.Put(ctx, f.key, f.data, store.PutOptions{ContentType: f.ctype}); err != nil {
			return Report{}, fmt.Errorf("dataset: put %s: %w", f.key, err)
		}
	}
	opts.Logger.InfoContext(ctx, "ingest done", "source", src.Name(), "written", rep.Written, "skipped", rep.Skipped,
		"refused", rep.Refused, "left_out", rep.LeftOut, "images", len(rep.Entries))
	return rep, nil
}
