package decode

import (
	"context"
	"errors"
	"fmt"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/messages"
)

// DefaultMaxObjectBytes is the object size limit when Config.MaxObjectBytes
// is 0: larger than any photograph a training set holds.
const DefaultMaxObjectBytes = 64 << 20

// Errors of the decode stage. ErrNotFound, ErrObjectTooLarge and
// ErrInvalidTask are returned wrapped in messages.Permanent.
var (
	ErrInvalidConfig  = errors.New("decode: invalid config")
	ErrInvalidTask    = errors.New("decode: invalid task")
	ErrNotFound       = errors.New("decode: object not found")
	ErrObjectTooLarge = errors.New("decode: object exceeds the size limit")
)

// Getter fetches a whole object by key. The store package satisfies it.
// Implementations must be safe for concurrent use and honor ctx.
type Getter interface {
	Get(ctx context.Context, key string) ([]byte, error)
}

// Config configures a Stage. The zero value is usable.
type Config struct {
	// MaxPixels refuses images with more pixels (width*height, read from the
	// header before decoding). 0 means imgdecode.DefaultMaxPixels.
	MaxPixels int64
	// MaxObjectBytes refuses objects larger than this. 0 means
	// DefaultMaxObjectBytes.
	MaxObjectBytes int64
	// ResizeShorter resizes each image so its shorter side has this length
	// (antialiased bilinear, as torchvision's Resize on PIL images); 0 keeps
	// the stored size.
	ResizeShorter int
	// Gray keeps one luma channel: set it for gray datasets such as MNIST.
	Gray bool
	// IsNotFound reports whether a Getter error means the object does not
	// exist (for the store package: errors.Is(err, store.ErrNotFound)). Nil
	// treats every fetch error as transient.
	IsNotFound func(error) bool
	// Cache, when set, keeps decoded images under CachePrefix so that later
	// epochs skip the fetch of the original and the decode.
	Cache       Cache
	CachePrefix string
}

func (c *Config) setDefaults() {
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = DefaultMaxObjectBytes
	}
}

// Validate reports whether c, after defaults, is usable.
func (c Config) Validate() error {
	c.setDefaults()
	if c.MaxObjectBytes < 0 {
		return fmt.Errorf("%w: MaxObjectBytes %d is negative", ErrInvalidConfig, c.MaxObjectBytes)
	}
	if err := c.imgConfig().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) imgConfig() imgdecode.Config {
	return imgdecode.Config{MaxPixels: c.MaxPixels, ResizeShorter: c.ResizeShorter, Gray: c.Gray}
}

// Stage decodes tasks. It holds no per-call state and is safe for
// concurrent use.
type Stage struct {
	cfg     Config
	objects Getter
	dec     *imgdecode.Decoder
	stats   cacheStats
}

// New returns a Stage reading objects through objects.
func New(cfg Config, objects Getter) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if objects == nil {
		return nil, fmt.Errorf("%w: nil Getter", ErrInvalidConfig)
	}
	cfg.setDefaults()
	dec, err := imgdecode.New(cfg.imgConfig())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &Stage{cfg: cfg, objects: objects, dec: dec}, nil
}

// Handle fetches and decodes the object of task. A transient fetch failure
// (including ctx ending) returns a plain error for the bus to retry; every
// failure retrying cannot fix wraps messages.ErrPermanent and names the key.
// Handle is idempotent: the same task yields the same Image.
func (s *Stage) Handle(ctx context.Context, task messages.DecodeTask) (messages.Image, error) {
	if task.Key == "" {
		return messages.Image{}, messages.Permanent(fmt.Errorf("%w: empty key (run %q, sample %d)", ErrInvalidTask, task.RunID, task.SampleID))
	}
	if s.cfg.Cache != nil {
		if img, ok := s.cached(ctx, task.Key); ok {
			return imageOf(task, img), nil
		}
	}
	data, err := s.objects.Get(ctx, task.Key)
	switch {
	case err != nil && s.cfg.IsNotFound != nil && s.cfg.IsNotFound(err):
		return messages.Image{}, messages.Permanent(fmt.Errorf("%w: %q: %w", ErrNotFound, task.Key, err))
	case err != nil:
		return messages.Image{}, fmt.Errorf("decode: fetch %q: %w", task.Key, err)
	case int64(len(data)) > s.cfg.MaxObjectBytes:
		return messages.Image{}, messages.Permanent(fmt.Errorf("%w: %q is %d bytes, limit %d", ErrObjectTooLarge, task.Key, len(data), s.cfg.MaxObjectBytes))
	}
	img, err := s.dec.Decode(data)
	if err != nil {
		// imgdecode refuses only for what the bytes are: no retry helps.
		return messages.Image{}, messages.Permanent(fmt.Errorf("decode: object %q: %w", task.Key, err))
	}
	if s.cfg.Cache != nil {
		s.store(ctx, task.Key, img)
	}
	return imageOf(task, img), nil
}

// imageOf is the message for task's decoded image. Every supported format
// caps a side below 2^31, so the sizes fit.
func imageOf(task messages.DecodeTask, img imgdecode.Image) messages.Image {
	return messages.Image{
		RunID:    task.RunID,
		Epoch:    task.Epoch,
		SampleID: task.SampleID,
		Label:    task.Label,
		Split:    task.Split,
		Height:   uint32(img.Height),
		Width:    uint32(img.Width),
		Channels: uint8(img.Channels),
		Pixels:   img.Pix,
	}
}
