package engine

import (
	"fmt"
	"math"
	"time"
)

// Batch is one training step's input: Size samples with Views views each,
// uint8 pixels row-major HWC, view-major (view v of sample i starts at
// (v*Size+i)*Height*Width*Channels) as SupCon's loss expects its features.
type Batch struct {
	Size     int
	Views    int
	Height   int
	Width    int
	Channels int
	Pixels   []uint8
	Labels   []int // one per sample; ignored by the simclr method

	// Position in the schedule: the learning rate depends on it.
	Epoch    int // 1-based
	Index    int // 0-based batch index within the epoch
	PerEpoch int // batches in the epoch
}

// Validate checks the batch's internal consistency.
func (b *Batch) Validate() error {
	if b.Size < 1 || b.Views < 1 || b.Height < 1 || b.Width < 1 || (b.Channels != 1 && b.Channels != 3) {
		return fmt.Errorf("%w: batch of %d samples x %d views of %dx%dx%d", ErrBatch, b.Size, b.Views, b.Height, b.Width, b.Channels)
	}
	if want := b.Size * b.Views * b.Height * b.Width * b.Channels; len(b.Pixels) != want {
		return fmt.Errorf("%w: %d pixel bytes, want %d for %d x %d views of %dx%dx%d",
			ErrBatch, len(b.Pixels), want, b.Size, b.Views, b.Height, b.Width, b.Channels)
	}
	if len(b.Labels) != b.Size {
		return fmt.Errorf("%w: %d labels for %d samples", ErrBatch, len(b.Labels), b.Size)
	}
	return nil
}

// Stats describes one completed step.
type Stats struct {
	Step     int64         // optimizer steps taken so far, this one included
	Epoch    int           // 1-based epoch the step belongs to
	Batch    int           // 0-based batch index within the epoch
	Batches  int           // batches in the epoch (0 when unknown)
	Loss     float64       // mean loss of the batch
	LR       float64       // learning rate used
	Samples  int           // samples in the batch
	Duration time.Duration // wall time of the step
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
