package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/supflow/supflow/engine"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/npy"
	"github.com/supflow/supflow/probe"
	"github.com/supflow/supflow/safetensors"
)

// Projector is an Encoder that also gives the projection head's
// L2-normalised output; *engine.CPU and *xla/trainer.Engine implement it.
type Projector interface {
	Project(ctx context.Context, im engine.Images) (features []float32, d int, proj []float32, p int, err error)
}

// Embedding is the frozen encoder's features of samples, one row per
// sample that loaded, in the order of the tasks.
type Embedding struct {
	Dim      int
	Features []float32 // len(Labels) rows of Dim
	// ProjDim and Projections are the head's normalised output, when
	// asked for (else 0 and nil).
	ProjDim     int
	Projections []float32
	IDs         []uint64 // each row's task SampleID
	Keys        []string // each row's object key; EmbedCheckpoint's: its sample's name (a shard member's, not the shard's)
	Labels      []int32
	Skipped     []Skipped // samples that could not be loaded, left out
	tasks       []int     // each row's index in Embed's tasks
}

// set is e as the probes' labelled feature set.
func (e *Embedding) set(classes int) probe.Set {
	s := probe.Set{X: e.Features, Dim: e.Dim, Classes: classes, Labels: make([]int, len(e.Labels))}
	for i, l := range e.Labels {
		s.Labels[i] = int(l)
	}
	return s
}

// Len is the number of rows.
func (e *Embedding) Len() int { return len(e.Labels) }

// Embed loads every task (Workers at a time), center-crops and resizes
// each image to Size x Size, and encodes them ChunkSize at a time: the
// features the evaluation's probes and the kNN monitor score. The tasks
// are loaded in shard order (loadOrder), whatever order they come in, so
// that a chunk holds shard neighbours for the Loader to fetch together;
// the rows are in the order of the tasks. Samples whose load fails
// permanently are returned in Skipped, in the order of the tasks; any
// other load error stops it. With head, enc must be a Projector, and the
// rows' projections are kept too.
func Embed(ctx context.Context, cfg Scoring, tasks []messages.DecodeTask, load Loader, enc Encoder, head bool) (*Embedding, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	proj, ok := enc.(Projector)
	if head && !ok {
		return nil, fmt.Errorf("%w: the encoder %T has no projection head to export", ErrInput, enc)
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("%w: no samples", ErrInput)
	}
	e := &Embedding{}
	view := cfg.Size * cfg.Size * cfg.Channels
	skip := make([]error, len(tasks)) // each task's permanent load failure
	order := loadOrder(tasks)
	for lo := 0; lo < len(order); lo += cfg.ChunkSize {
		idx := order[lo:min(lo+cfg.ChunkSize, len(order))]
		chunk := make([]messages.DecodeTask, len(idx))
		for j, i := range idx {
			chunk[j] = tasks[i]
		}
		px, errs, err := loadChunk(ctx, cfg, chunk, load, centreCrop(cfg))
		if err != nil {
			return nil, err
		}
		var rows []int // the task of each loaded image, as px now holds them
		for j, err := range errs {
			if err != nil {
				skip[idx[j]] = err
				continue
			}
			copy(px[len(rows)*view:], px[j*view:(j+1)*view])
			rows = append(rows, idx[j])
		}
		if len(rows) == 0 {
			continue
		}
		im := engine.Images{N: len(rows), Height: cfg.Size, Width: cfg.Size, Channels: cfg.Channels, Pixels: px[:len(rows)*view]}
		var f, pf []float32
		var d, p int
		if head {
			f, d, pf, p, err = proj.Project(ctx, im)
		} else {
			f, d, err = enc.Encode(ctx, im)
		}
		if err != nil {
			return nil, err
		}
		if err := e.place(len(tasks), rows, f, d, pf, p); err != nil {
			return nil, err
		}
	}
	for i, t := range tasks {
		if skip[i] != nil {
			e.Skipped = append(e.Skipped, Skipped{Key: t.Key, ID: t.SampleID, Err: skip[i]})
			continue
		}
		// Rows only move down: row n < i was placed or moved already.
		n := len(e.tasks)
		copy(e.Features[n*e.Dim:(n+1)*e.Dim], e.Features[i*e.Dim:(i+1)*e.Dim])
		if e.Projections != nil {
			copy(e.Projections[n*e.ProjDim:(n+1)*e.ProjDim], e.Projections[i*e.ProjDim:(i+1)*e.ProjDim])
		}
		e.IDs, e.Keys, e.Labels, e.tasks = append(e.IDs, t.SampleID), append(e.Keys, t.Key), append(e.Labels, t.Label), append(e.tasks, i)
	}
	if e.Len() == 0 {
		return nil, fmt.Errorf("%w: none of %d samples could be loaded (first: %v)", ErrInput, len(tasks), e.Skipped[0].Err)
	}
	e.Features = e.Features[:e.Len()*e.Dim]
	if e.Projections != nil {
		e.Projections = e.Projections[:e.Len()*e.ProjDim]
	}
	return e, nil
}

// place writes the features f (d each) and projections pf (p each, none
// when nil) of the images of tasks rows into the rows' own places among n,
// making room for n rows at the first call.
func (e *Embedding) place(n int, rows []int, f []float32, d int, pf []float32, p int) error {
	if e.Features == nil {
		e.Dim, e.Features = d, make([]float32, n*d)
		if pf != nil {
			e.ProjDim, e.Projections = p, make([]float32, n*p)
		}
	}
	if d != e.Dim || p != e.ProjDim || len(f) != len(rows)*d || len(pf) != len(rows)*p {
		return fmt.Errorf("%w: the encoder gave %d features and %d projections per image, then %d and %d for %d images",
			ErrInput, e.Dim, e.ProjDim, d, p, len(rows))
	}
	for r, i := range rows {
		copy(e.Features[i*d:(i+1)*d], f[r*d:(r+1)*d])
		if pf != nil {
			copy(e.Projections[i*p:(i+1)*p], pf[r*p:(r+1)*p])
		}
	}
	return nil
}

// loadOrder is the order Embed loads tasks in: by key, then offset (stable
// for equal ones), so that a sharded data set's chunks hold neighbours of
// one shard, whether the tasks come in manifest order (ingest writes
// shard by shard) or as a selection or a shuffle of it.
func loadOrder(tasks []messages.DecodeTask) []int {
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return messages.ComparePlace(tasks[a], tasks[b])
	})
	return order
}

// Files Embedding.Write writes into its directory.
const (
	EmbeddingFile = "embeddings.safetensors" // features [N,d] F32, projections [N,p] F32 (head only), labels and sample_ids [N] I64; keys and meta in the metadata
	FeaturesNPY   = "features.npy"           // [N,d] float32
	LabelsNPY     = "labels.npy"             // [N] int64
	IDsNPY        = "sample_ids.npy"         // [N] int64
	ProjNPY       = "projections.npy"        // [N,p] float32, with the head only
	KeysJSON      = "keys.json"              // [N] object keys, a JSON array
)

// Write stores e in dir (created if missing) as EmbeddingFile, whose
// metadata holds meta and "keys" (the object keys as a JSON array), and
// the same arrays as .npy files with keys.json beside them (projections
// only when e has them).
func (e *Embedding) Write(dir string, meta map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n := e.Len()
	labels, ids := make([]int64, n), make([]int64, n)
	for i := range n {
		labels[i], ids[i] = int64(e.Labels[i]), int64(e.IDs[i])
	}
	keys, err := json.Marshal(e.Keys)
	if err != nil {
		return err
	}
	f := safetensors.New()
	maps.Copy(f.Metadata, meta)
	f.Metadata["format"] = "pt"
	f.Metadata["keys"] = string(keys)
	f.PutFloat32s("features", []int{n, e.Dim}, e.Features)
	f.PutInt64s("labels", []int{n}, labels)
	f.PutInt64s("sample_ids", []int{n}, ids)
	if e.Projections != nil {
		f.PutFloat32s("projections", []int{n, e.ProjDim}, e.Projections)
	}
	if err := f.WriteFile(filepath.Join(dir, EmbeddingFile)); err != nil {
		return err
	}
	if err := npy.WriteFile(filepath.Join(dir, FeaturesNPY), []int{n, e.Dim}, e.Features); err != nil {
		return err
	}
	if err := npy.WriteFile(filepath.Join(dir, LabelsNPY), []int{n}, labels); err != nil {
		return err
	}
	if err := npy.WriteFile(filepath.Join(dir, IDsNPY), []int{n}, ids); err != nil {
		return err
	}
	if e.Projections != nil {
		if err := npy.WriteFile(filepath.Join(dir, ProjNPY), []int{n, e.ProjDim}, e.Projections); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, KeysJSON), keys, 0o644)
}
