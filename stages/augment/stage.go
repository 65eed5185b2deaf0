package augment

import (
	"context"
	"fmt"
	"sync"

	augops "github.com/supflow/supflow/augment"
	"github.com/supflow/supflow/messages"
)

// Config configures the stage. The augmentation knobs are inline, so
// pipeline.yaml sets them beside the seed (size, n_views, scale, ...); see
// augops.Config for each field and its default.
type Config struct {
	// Seed is the run seed. With the epoch, sample id and view index it
	// fixes every random choice, whichever worker makes the view.
	Seed          uint64 `yaml:"seed"`
	augops.Config `yaml:",inline"`
}

// Stage makes views. It is safe for concurrent use: each call borrows an
// Augmenter (scratch space) from a pool.
type Stage struct {
	seed uint64
	cfg  augops.Config // defaults applied
	pool sync.Pool     // *augops.Augmenter
}

// New validates cfg and returns a Stage; a bad Config gives an error
// wrapping augops.ErrConfig.
func New(cfg Config) (*Stage, error) {
	proto, err := augops.New(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("augment stage: %w", err)
	}
	s := &Stage{seed: cfg.Seed, cfg: proto.Config()}
	s.pool.New = func() any { return proto.Clone() }
	return s, nil
}

// Handle returns the views of img: NViews views of Size x Size with the
// image's channel count, HWC uint8, concatenated in view order. The result
// depends only on the Config and on img's epoch, sample id and pixels, so a
// redelivered image gives the same views. A malformed image (pixel count
// mismatch, zero or oversized side, channels other than 1 or 3) gives an
// error marked messages.Permanent and wrapping augops.ErrImage.
func (s *Stage) Handle(ctx context.Context, img messages.Image) (messages.ViewGroup, error) {
	if err := ctx.Err(); err != nil {
		return messages.ViewGroup{}, err
	}
	px := augops.Pixels{H: int(img.Height), W: int(img.Width), C: int(img.Channels), Pix: img.Pixels}
	if err := px.Validate(); err != nil {
		return messages.ViewGroup{}, messages.Permanent(fmt.Errorf("augment stage: sample %d: %w", img.SampleID, err))
	}
	a := s.pool.Get().(*augops.Augmenter)
	defer s.pool.Put(a)
	n := s.cfg.NViews * s.cfg.Size * s.cfg.Size * px.C
	pix, err := a.AppendViews(make([]byte, 0, n), px, augops.Key{Seed: s.seed, Epoch: img.Epoch, SampleID: img.SampleID})
	if err != nil {
		// Only the image can be at fault: the Config was validated.
		return messages.ViewGroup{}, messages.Permanent(fmt.Errorf("augment stage: sample %d: %w", img.SampleID, err))
	}
	return messages.ViewGroup{
		RunID:    img.RunID,
		Epoch:    img.Epoch,
		SampleID: img.SampleID,
		Label:    img.Label,
		Split:    img.Split,
		NViews:   uint8(s.cfg.NViews),
		Height:   uint32(s.cfg.Size),
		Width:    uint32(s.cfg.Size),
		Channels: img.Channels,
		Pixels:   pix,
	}, nil
}
