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

// Loader fetches and decodes one sample: the decode stage's handler.
type Loader func(ctx context.Context, t messages.DecodeTask) (messages.Image, error)

// Encoder maps images to frozen encoder features (eval mode).
type Encoder interface {
	Encode(ctx context.Context, im engine.Images) ([]float32, int, error)
}

// Scoring configures feature extraction and scoring.
type Scoring struct {
	Size      int // images are center-cropped and resized to Size x Size
	Channels  int // 1 or 3, as the encoder takes
	Workers   int // concurrent loads; 0 means 4
	ChunkSize int // images encoded per call; 0 means 1024
	Classes   int
	Probe     probe.Config
	KNN       probe.KNNConfig
}

// Validate checks the image shape and class count; zero Workers and
// ChunkSize are defaults.
func (c Scoring) Validate() error {
	if c.Size < 1 || (c.Channels != 1 && c.Channels != 3) || c.Classes < 2 || c.Workers < 0 || c.ChunkSize < 0 {
		return fmt.Errorf("%w: size %d, channels %d, classes %d, workers %d, chunk %d",
			ErrInput, c.Size, c.Channels, c.Classes, c.Workers, c.ChunkSize)
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
	return c, nil
}

// Result is what Evaluate measured.
type Result struct {
	Linear      probe.LinearScore
	KNN         probe.Score
	Train, Test int // samples whose features were extracted
	Skipped     []Skipped
}

// Skipped is a sample that could not be loaded (a missing or corrupt
// object): it is reported and left out, not fatal.
type Skipped struct {
	Key string
	Err error
}

// Evaluate extracts features of train and test, fits the linear probe on
// train and scores it and the kNN classifier on test.
func Evaluate(ctx context.Context, cfg Scoring, train, test []messages.DecodeTask, load Loader, enc Encoder) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	trainSet, skipTrain, err := Extract(ctx, cfg, train, load, enc)
	if err != nil {
		return nil, fmt.Errorf("evaluate: train features: %w", err)
	}
	testSet, skipTest, err := Extract(ctx, cfg, test, load, enc)
	if err != nil {
		return nil, fmt.Errorf("evaluate: test features: %w", err)
	}
	lin, err := probe.Train(ctx, cfg.Probe, trainSet)
	if err != nil {
		return nil, fmt.Errorf("evaluate: linear probe: %w", err)
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
	return &Result{Linear: score, KNN: knn, Train: trainSet.Len(), Test: testSet.Len(), Skipped: append(skipTrain, skipTest...)}, nil
}

// Extract is Embed as a labelled feature set, what the probes take.
func Extract(ctx context.Context, cfg Scoring, tasks []messages.DecodeTask, load Loader, enc Encoder) (probe.Set, []Skipped, error) {
	e, err := Embed(ctx, cfg, tasks, load, enc, false)
	if err != nil {
		return probe.Set{}, nil, err
	}
	set := probe.Set{X: e.Features, Dim: e.Dim, Classes: cfg.Classes, Labels: make([]int, len(e.Labels))}
	for i, l := range e.Labels {
		set.Labels[i] = int(l)
	}
	return set, e.Skipped, nil
}

// loadChunk loads and resizes a chunk concurrently into one pixel buffer.
func loadChunk(ctx context.Context, cfg Scoring, chunk []messages.DecodeTask, load Loader) ([]uint8, []bool, []Skipped, error) {
	view := cfg.Size * cfg.Size * cfg.Channels
	px := make([]uint8, len(chunk)*view)
	ok := make([]bool, len(chunk))
	errs := make([]error, len(chunk))
	for i := range errs {
		errs[i] = errNotLoaded
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(cfg.Workers, len(chunk)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r transform.Resizer
			var work transform.Image
			for i := range next {
				errs[i] = loadOne(ctx, cfg, chunk[i], load, &r, &work, px[i*view:(i+1)*view])
				if errs[i] != nil && !errors.Is(errs[i], messages.ErrPermanent) {
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
	var skipped []Skipped
	for i, err := range errs {
		switch {
		case err == nil:
			ok[i] = true
		case errors.Is(err, errNotLoaded):
			if ctx.Err() != nil {
				return nil, nil, nil, ctx.Err()
			}
			return nil, nil, nil, fmt.Errorf("load %s: %w", chunk[i].Key, err)
		case errors.Is(err, messages.ErrPermanent):
			skipped = append(skipped, Skipped{Key: chunk[i].Key, Err: err})
		default:
			return nil, nil, nil, fmt.Errorf("load %s: %w", chunk[i].Key, err)
		}
	}
	return px, ok, skipped, nil
}

// errNotLoaded marks a sample no worker reached (the chunk was cancelled).
var errNotLoaded = errors.New("evaluate: not loaded")

// loadOne loads one image into dst as Size x Size x Channels: the largest
// centered square, resized (antialiased) when its side differs from Size.
func loadOne(ctx context.Context, cfg Scoring, t messages.DecodeTask, load Loader, r *transform.Resizer, work *transform.Image, dst []uint8) error {
	im, err := load(ctx, t)
	if err != nil {
		return err
	}
	if int(im.Channels) != cfg.Channels {
		return messages.Permanent(fmt.Errorf("%w: %s has %d channels, the encoder takes %d", ErrInput, t.Key, im.Channels, cfg.Channels))
	}
	h, w := int(im.Height), int(im.Width)
	if h == cfg.Size && w == cfg.Size {
		copy(dst, im.Pixels)
		return nil
	}
	side := min(h, w)
	box := transform.Box{Top: (h - side) / 2, Left: (w - side) / 2, Height: side, Width: side}
	src := transform.Pixels{H: h, W: w, C: cfg.Channels, Pix: im.Pixels}
	if err := r.ResizedCrop(work, src, box, cfg.Size, cfg.Size, true); err != nil {
		return messages.Permanent(fmt.Errorf("%w: %s: %w", ErrInput, t.Key, err))
	}
	work.AppendBytes(dst[:0])
	return nil
}
