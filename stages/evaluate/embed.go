package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"

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
	Keys        []string // each row's object key
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
// features the evaluation's probes and the kNN monitor score. Samples
// whose load fails permanently are returned in Skipped; any other load
// error stops it. With head, enc must be a Projector, and the rows'
// projections are kept too.
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
	for lo := 0; lo < len(tasks); lo += cfg.ChunkSize {
		chunk := tasks[lo:min(lo+cfg.ChunkSize, len(tasks))]
		px, ok, skip, err := loadChunk(ctx, cfg, chunk, load, centreCrop(cfg))
		if err != nil {
			return nil, err
		}
		e.Skipped = append(e.Skipped, skip...)
		n := 0
		for i, good := range ok {
			if good {
				copy(px[n*view:], px[i*view:(i+1)*view])
				t := chunk[i]
				e.IDs, e.Keys, e.Labels = append(e.IDs, t.SampleID), append(e.Keys, t.Key), append(e.Labels, t.Label)
				e.tasks = append(e.tasks, lo+i)
				n++
			}
		}
		if n == 0 {
			continue
		}
		im := engine.Images{N: n, Height: cfg.Size, Width: cfg.Size, Channels: cfg.Channels, Pixels: px[:n*view]}
		var f, pf []float32
		var d int
		if head {
			f, d, pf, e.ProjDim, err = proj.Project(ctx, im)
		} else {
			f, d, err = enc.Encode(ctx, im)
		}
		if err != nil {
			return nil, err
		}
		e.Dim = d
		e.Features = append(e.Features, f...)
		e.Projections = append(e.Projections, pf...)
	}
	if e.Len() == 0 {
		return nil, fmt.Errorf("%w: none of %d samples could be loaded (first: %v)", ErrInput, len(tasks), e.Skipped[0].Err)
	}
	return e, nil
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
