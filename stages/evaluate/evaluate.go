package evaluate

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/transform"
)

// ErrInput reports unusable inputs (no samples, a wrong-size image).
var ErrInput = errors.New("evaluate: invalid input")

// Loader prepares the loads of a chunk of samples and returns load, which
// fetches and decodes chunk[i]. load is called at most once per i, from up
// to Scoring.Workers goroutines at a time, and may share one fetch among
// tasks of the chunk (decode's runs of shard neighbours; Embed's chunks
// are cut in shard order for that). A failure retrying cannot fix wraps
// messages.ErrPermanent. cmd/supflow passes Planned(dec.Plan,
// dec.HandleTask) of its decode stage.
type Loader func(chunk []messages.DecodeTask) (load func(ctx context.Context, i int) (messages.Image, error))

// Planned is the Loader of a stage that plans a chunk's fetches before it
// handles the chunk's tasks one by one, as decode.Stage's Plan and
// HandleTask do (then the members of a shard that lie close together in a
// chunk are fetched with one ranged GET, or read from their decoded shard,
// as in training). plan must return one T per task, in the tasks' order.
func Planned[T any](plan func([]messages.DecodeTask) []T, handle func(context.Context, T) (messages.Image, error)) Loader {
	return func(chunk []messages.DecodeTask) func(context.Context, int) (messages.Image, error) {
		planned := plan(chunk)
		return func(ctx context.Context, i int) (messages.Image, error) { return handle(ctx, planned[i]) }
	}
}

// Encoder maps images to frozen encoder features (eval mode).
type Encoder interface {
	Encode(ctx context.Context, im engine.Images) ([]float32, int, error)
}

// Scoring configures feature extraction and scoring.
type Scoring struct {
	Size     int // images are center-cropped and resized to Size x Size
	Channels int // 1 or 3, as the encoder takes
	Workers  int // concurrent loads; 0 means 4
	// ChunkSize is how many images are loaded together (one Loader call)
	// and encoded per call; 0 means 1024.
	ChunkSize int
	Classes   int
	Probe     probe.Config
	KNN       probe.KNNConfig
	// Protocol is how the linear classifier trains: ProtocolFrozen (or
	// empty) or ProtocolSupContrast, whose views Augment (the augment
	// section's crop and flip) and Seed (the run's) draw.
	Protocol string
	Augment  transform.Config
	Seed     uint64
}

// Validate checks the image shape and class count; zero Workers and
// ChunkSize are defaults.
func (c Scoring) Validate() error {
	if c.Size < 1 || (c.Channels != 1 && c.Channels != 3) || c.Classes < 2 || c.Workers < 0 || c.ChunkSize < 0 {
		return fmt.Errorf("%w: size %d, channels %d, classes %d, workers %d, chunk %d",
			ErrInput, c.Size, c.Channels, c.Classes, c.Workers, c.ChunkSize)
	}
	if c.Protocol != "" && c.Protocol != ProtocolFrozen && c.Protocol != ProtocolSupContrast {
		return fmt.Errorf("%w: protocol %q, want %s or %s", ErrInput, c.Protocol, ProtocolFrozen, ProtocolSupContrast)
	}
	return nil
}

// withDefaults returns c, validated, with its zero fields at their defaults.
func (c Scoring) withDefaults() (Scoring, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = 1024
	}
	if c.Protocol == "" {
		c.Protocol = ProtocolFrozen
	}
	return c, nil
}

// Result is what Evaluate measured.
type Result struct {
	Linear      probe.LinearScore
	KNN         probe.Score
	Train, Test int // samples whose features were extracted
	Skipped     []Skipped
	Protocol    string // how Linear's classifier was trained
}

// Skipped is a sample that could not be loaded (a missing or corrupt
// object): it is reported and left out, not fatal.
type Skipped struct {
	Key string // the object key of its task (a shard's, for a shard member)
	ID  uint64 // its task's SampleID
	Err error
}

// Evaluate extracts features of train and test, fits the linear probe on
// train and scores it and the kNN classifier on test.
func Evaluate(ctx context.Context, cfg Scoring, train, test []messages.DecodeTask, load Loader, enc Encoder) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	trainEmb, err := Embed(ctx, cfg, train, load, enc, false)
	if err != nil {
		return nil, fmt.Errorf("evaluate: train features: %w", err)
	}
	trainSet, skipTrain := trainEmb.set(cfg.Classes), trainEmb.Skipped
	testSet, skipTest, err := Extract(ctx, cfg, test, load, enc)
	if err != nil {
		return nil, fmt.Errorf("evaluate: test features: %w", err)
	}
	var lin *probe.Linear
	if cfg.Protocol == ProtocolSupContrast {
		kept := make([]messages.DecodeTask, trainEmb.Len())
		for i, t := range trainEmb.tasks {
			kept[i] = train[t]
		}
		lin, err = trainOnViews(ctx, cfg, kept, trainSet.Labels, trainSet.Dim, load, enc)
	} else {
		lin, err = probe.Train(ctx, cfg.Probe, trainSet)
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate: linear probe (%s): %w", cfg.Protocol, err)
	}
	score, err := lin.Evaluate(ctx, testSet)
	if err != nil {
		return nil, fmt.Errorf("evaluate: score linear probe: %w", err)
	}
	knnCfg := cfg.KNN
	if knnCfg.K > trainSet.Len() {
		knnCfg.K = trainSet.Len()
	}
	knn, err := probe.KNN(ctx, knnCfg, trainSet, testSet)
	if err != nil {
		return nil, fmt.Errorf("evaluate: kNN: %w", err)
	}
	return &Result{Linear: score, KNN: knn, Train: trainSet.Len(), Test: testSet.Len(), Skipped: append(skipTrain, skipTest...),
		Protocol: cfg.Protocol}, nil
}

// trainOnViews is SupContrast's linear evaluation: the classifier's every
// step encodes a fresh random view (RandomResizedCrop and flip by cfg's
// Augment, no colour jitter or grayscale; drawn from cfg.Seed, the epoch
// and the sample id) of each of its samples, through the same code the
// augment stage uses; features are not standardised.
func trainOnViews(ctx context.Context, cfg Scoring, tasks []messages.DecodeTask, labels []int, dim int, load Loader, enc Encoder) (*probe.Linear, error) {
	ac := cfg.Augment
	zero := 0.0
	ac.Size, ac.JitterP, ac.GrayP = cfg.Size, &zero, &zero
	aug, err := transform.New(ac)
	if err != nil {
		return nil, err
	}
	pc := cfg.Probe
	pc.Standardize = false
	var batch []messages.DecodeTask
	return probe.TrainOn(ctx, pc, dim, cfg.Classes, labels, func(ctx context.Context, epoch int, rows []int, dst []float32) error {
		batch = batch[:0]
		for _, r := range rows {
			batch = append(batch, tasks[r])
		}
		px, skip, err := loadChunk(ctx, cfg, batch, load, randomView(cfg, aug, epoch))
		if err != nil {
			return err
		}
		for i, err := range skip {
			if err != nil {
				return fmt.Errorf("%w: %s gave features but no training view: %w", ErrInput, batch[i].Key, err)
			}
		}
		f, d, err := enc.Encode(ctx, engine.Images{N: len(batch), Height: cfg.Size, Width: cfg.Size, Channels: cfg.Channels, Pixels: px})
		if err != nil {
			return err
		}
		if d != dim {
			return fmt.Errorf("%w: the encoder gave %d features, then %d", ErrInput, dim, d)
		}
		copy(dst, f)
		return nil
	})
}

// Extract is Embed as a labelled feature set, what the probes take.
func Extract(ctx context.Context, cfg Scoring, tasks []messages.DecodeTask, load Loader, enc Encoder) (probe.Set, []Skipped, error) {
	e, err := Embed(ctx, cfg, tasks, load, enc, false)
	if err != nil {
		return probe.Set{}, nil, err
	}
	return e.set(cfg.Classes), e.Skipped, nil
}

// prepare writes the view of a loaded image into dst (Size x Size x
// Channels); each worker makes its own with the scratch space it needs.
type prepare func(t messages.DecodeTask, im messages.Image, dst []uint8) error

// loadChunk loads a chunk concurrently (one Loader call: its shard
// neighbours share their fetches) and prepares each image's view into one
// pixel buffer. skip[i] is the permanent failure of chunk[i], nil when it
// loaded; any other failure stops the chunk and is returned.
func loadChunk(ctx context.Context, cfg Scoring, chunk []messages.DecodeTask, load Loader, newPrepare func() prepare) (px []uint8, skip []error, err error) {
	view := cfg.Size * cfg.Size * cfg.Channels
	px = make([]uint8, len(chunk)*view)
	errs := make([]error, len(chunk))
	for i := range errs {
		errs[i] = errNotLoaded
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loadAt := load(chunk)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.Workers, len(chunk)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prep := newPrepare()
			for i := range next {
				im, err := loadAt(ctx, i)
				if err == nil {
					err = prepareView(cfg, chunk[i], im, prep, px[i*view:(i+1)*view])
				}
				if errs[i] = err; err != nil && !errors.Is(err, messages.ErrPermanent) {
					cancel()
				}
			}
		}()
	}
feed:
	for i := range chunk {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		switch {
		case err == nil, errors.Is(err, messages.ErrPermanent):
		case errors.Is(err, errNotLoaded) && ctx.Err() != nil:
			return nil, nil, ctx.Err()
		default:
			return nil, nil, fmt.Errorf("load %s: %w", chunk[i].Key, err)
		}
	}
	return px, errs, nil
}

// errNotLoaded marks a sample no worker reached (the chunk was cancelled).
var errNotLoaded = errors.New("evaluate: not loaded")

// prepareView prepares the view of t's loaded image into dst.
func prepareView(cfg Scoring, t messages.DecodeTask, im messages.Image, prep prepare, dst []uint8) error {
	if int(im.Channels) != cfg.Channels {
		return messages.Permanent(fmt.Errorf("%w: %s has %d channels, the encoder takes %d", ErrInput, t.Key, im.Channels, cfg.Channels))
	}
	return prep(t, im, dst)
}

// centreCrop is the evaluation's view: the largest centred square,
// resized (antialiased) to Size x Size when its side differs.
func centreCrop(cfg Scoring) func() prepare {
	return func() prepare {
		var r transform.Resizer
		var work transform.Image
		return func(t messages.DecodeTask, im messages.Image, dst []uint8) error {
			h, w := int(im.Height), int(im.Width)
			if h == cfg.Size && w == cfg.Size {
				copy(dst, im.Pixels)
				return nil
			}
			side := min(h, w)
			box := transform.Box{Top: (h - side) / 2, Left: (w - side) / 2, Height: side, Width: side}
			src := transform.Pixels{H: h, W: w, C: cfg.Channels, Pix: im.Pixels}
			if err := r.ResizedCrop(&work, src, box, cfg.Size, cfg.Size, true); err != nil {
				return messages.Permanent(fmt.Errorf("%w: %s: %w", ErrInput, t.Key, err))
			}
			work.AppendBytes(dst[:0])
			return nil
		}
	}
}

// randomView is trainOnViews' view of a sample in the 0-based epoch: view
// 0 of aug for the key (seed, epoch+1, sample id), as the augment stage
// keys its views.
func randomView(cfg Scoring, aug *transform.Augmenter, epoch int) func() prepare {
	return func() prepare {
		a := aug.Clone()
		return func(t messages.DecodeTask, im messages.Image, dst []uint8) error {
			src := transform.Pixels{H: int(im.Height), W: int(im.Width), C: cfg.Channels, Pix: im.Pixels}
			if err := src.Validate(); err != nil {
				return messages.Permanent(fmt.Errorf("%w: %s: %w", ErrInput, t.Key, err))
			}
			p := a.DrawParams(transform.Key{Seed: cfg.Seed, Epoch: uint32(epoch + 1), SampleID: t.SampleID}, 0, src.H, src.W)
			if _, err := a.Apply(dst[:0], src, p); err != nil {
				return messages.Permanent(fmt.Errorf("%w: %s: %w", ErrInput, t.Key, err))
			}
			return nil
		}
	}
}
