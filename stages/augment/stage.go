package augment

import (
	"context"
	"fmt"
	"sync"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/messages"
	"github.com/supflow/supflow/transform"
)

// Config configures the stage: pipeline.yaml's augment section. The
// augmentation knobs are inline, so the section sets them beside workers
// (size, n_views, scale, ...); see transform.Config for each and its default.
type Config struct {
	// Seed is the run seed (pipeline.yaml's run.seed, not a key of this
	// section). With the epoch, sample id and view index it fixes every
	// random choice, whichever worker makes the view.
	Seed uint64 `yaml:"-"`
	// Workers is how many images the process augments concurrently: the
	// concurrency cmd/supflow mounts Handle with, in [1, 256]; default 2.
	// The Stage itself does not read it.
	Workers          int `yaml:"workers"`
	transform.Config `yaml:",inline"`
}

// maxWorkers bounds Config.Workers.
const maxWorkers = 256

// DefaultConfig returns the defaults of every field but Seed: 2 workers and
// SupContrast's policy (transform.DefaultConfig).
func DefaultConfig() Config {
	return Config{Workers: 2, Config: transform.DefaultConfig()}
}

// setDefaults fills the unset fields from DefaultConfig.
func (c *Config) setDefaults() {
	if c.Workers == 0 {
		c.Workers = DefaultConfig().Workers
	}
	c.Config = c.Config.Defaults()
}

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its key in the augment section and wrapping
// transform.ErrConfig. Like transform.Config.Validate it checks c as given: New
// fills unset fields first. n_views is capped at messages.MaxViews, the most
// one view group message carries.
func (c Config) Validate() error {
	k := field.NewChecker(transform.ErrConfig)
	k.IntIn("workers", c.Workers, 1, maxWorkers)
	k.Include("", c.Config.Validate())
	if c.NViews > messages.MaxViews {
		k.Add("n_views", c.NViews, fmt.Sprintf("at most %d, the views one message carries", messages.MaxViews))
	}
	return k.Err()
}

// Stage makes views. It is safe for concurrent use: each call borrows an
// Augmenter (scratch space) from a pool.
type Stage struct {
	seed uint64
	cfg  transform.Config // defaults applied
	pool sync.Pool        // *transform.Augmenter
}

// New returns a Stage for cfg with its unset fields defaulted; a bad Config
// gives an error wrapping transform.ErrConfig that names each bad key.
func New(cfg Config) (*Stage, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("augment stage: %w", err)
	}
	proto, err := transform.New(cfg.Config)
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
// error marked messages.Permanent and wrapping transform.ErrImage.
func (s *Stage) Handle(ctx context.Context, img messages.Image) (messages.ViewGroup, error) {
	if err := ctx.Err(); err != nil {
		return messages.ViewGroup{}, err
	}
	px := transform.Pixels{H: int(img.Height), W: int(img.Width), C: int(img.Channels), Pix: img.Pixels}
	if err := px.Validate(); err != nil {
		return messages.ViewGroup{}, messages.Permanent(fmt.Errorf("augment stage: sample %d: %w", img.SampleID, err))
	}
	a := s.pool.Get().(*transform.Augmenter)
	defer s.pool.Put(a)
	n := s.cfg.NViews * s.cfg.Size * s.cfg.Size * px.C
	pix, err := a.AppendViews(make([]byte, 0, n), px, transform.Key{Seed: s.seed, Epoch: img.Epoch, SampleID: img.SampleID})
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
