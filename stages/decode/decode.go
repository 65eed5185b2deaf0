package decode

import (
	"context"
	"errors"
	"fmt"

	"github.com/supflow/supflow/config/field"
	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/internal/bufpool"
	"github.com/supflow/supflow/messages"
)

// Defaults of Config.
const (
	// DefaultMaxObjectBytes is the object size limit, imgdecode's default.
	DefaultMaxObjectBytes = imgdecode.DefaultMaxObjectBytes
	// DefaultMaxPixels is the pixel limit, imgdecode's default: 50
	// megapixels, about 150 MB of RGB per image in flight. Ingest refuses
	// images over the same limit (dataset.Options.MaxPixels).
	DefaultMaxPixels = imgdecode.DefaultMaxPixels
)

// Bounds of Config fields.
const (
	maxWorkers        = 256
	maxMaxObjectBytes = 1<<31 - 1
)

// Errors of the decode stage. ErrNotFound, ErrObjectTooLarge,
// ErrOutOfRange and ErrInvalidTask are returned wrapped in
// messages.Permanent.
var (
	ErrInvalidConfig  = errors.New("decode: invalid config")
	ErrInvalidTask    = errors.New("decode: invalid task")
	ErrNotFound       = errors.New("decode: object not found")
	ErrObjectTooLarge = errors.New("decode: object exceeds the size limit")
	// ErrOutOfRange: a task's shard member runs past its shard's end (a
	// truncated shard or a wrong manifest entry).
	ErrOutOfRange = errors.New("decode: shard member past the end of its shard")
)

// Getter fetches a whole object by key, reading at most max bytes: an
// object larger than max must be refused from its size, before its body is
// read, with an error Deps.IsTooLarge recognizes. GetRange fetches bytes
// [off, off+n) of one, a shard member: n over max is refused as too large
// before any request, and a range not wholly inside the object with an
// error Deps.IsOutOfRange recognizes. *store.Client satisfies it
// (store.ErrTooLarge, store.ErrOutOfRange). Implementations must be safe
// for concurrent use and honor ctx.
type Getter interface {
	GetMax(ctx context.Context, key string, max int64) ([]byte, error)
	GetRange(ctx context.Context, key string, off, n, max int64) ([]byte, error)
}

// Config configures a Stage: pipeline.yaml's decode section, whose keys are
// the YAML tags (the image settings, max_pixels, resize_shorter and gray,
// come inline from imgdecode.Config). The zero value is usable: New fills
// unset fields from DefaultConfig.
type Config struct {
	// Workers is how many tasks the process decodes concurrently: the
	// concurrency cmd/supflow mounts Handle with, in [1, 256]; default 2.
	// The Stage itself does not read it.
	Workers int `yaml:"workers"`
	// Config holds the decoder's limits and output form: MaxPixels refuses
	// images with more pixels (width*height, read from the header before
	// decoding), default DefaultMaxPixels; ResizeShorter resizes each image
	// so its shorter side has this length (antialiased bilinear, as
	// torchvision's Resize on PIL images), 0 keeping the stored size; Gray
	// keeps one luma channel, for gray datasets such as MNIST.
	imgdecode.Config `yaml:",inline"`
	// MaxObjectBytes refuses objects larger than this, in [1, 2^31-1];
	// default DefaultMaxObjectBytes.
	MaxObjectBytes int64 `yaml:"max_object_bytes"`
	// Cache keeps decoded images through Deps.Cache so that later epochs
	// skip the fetch of the original and the decode: a loose object's
	// entry is written by the first decode of it, a shard member is read
	// from its shard's decoded shard, which BuildShards writes (ingest);
	// New then requires Deps.Cache.
	Cache bool `yaml:"cache"`
}

// DefaultConfig returns the defaults of every field.
func DefaultConfig() Config {
	return Config{
		Workers:        2,
		Config:         imgdecode.Config{MaxPixels: DefaultMaxPixels},
		MaxObjectBytes: DefaultMaxObjectBytes,
	}
}

// setDefaults fills the unset fields from DefaultConfig.
func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = d.MaxPixels
	}
	if c.MaxObjectBytes == 0 {
		c.MaxObjectBytes = d.MaxObjectBytes
	}
}

// Validate reports every field of c out of range, each a *field.Error
// (config/field) named by its key in the decode section and wrapping
// ErrInvalidConfig. It checks c as given: a zero limit is refused (New
// defaults it first).
func (c Config) Validate() error {
	k := field.NewChecker(ErrInvalidConfig)
	k.IntIn("workers", c.Workers, 1, maxWorkers)
	k.Include("", c.Config.Validate())
	k.Int64In("max_object_bytes", c.MaxObjectBytes, 1, maxMaxObjectBytes)
	return k.Err()
}

// Deps are what a Stage uses besides its Config.
type Deps struct {
	// Objects fetches the originals; required.
	Objects Getter
	// IsNotFound reports whether an Objects or Cache error means the object
	// does not exist (for the store package: errors.Is(err,
	// store.ErrNotFound)). Nil treats every fetch error as transient.
	IsNotFound func(error) bool
	// IsTooLarge reports whether an Objects error means the object is over
	// the size limit it was fetched with (for the store package:
	// errors.Is(err, store.ErrTooLarge)): a permanent failure. Nil treats
	// every fetch error as transient.
	IsTooLarge func(error) bool
	// IsOutOfRange reports whether an Objects.GetRange error means the
	// range runs past the object's end (for the store package: errors.Is(err,
	// store.ErrOutOfRange)): a permanent failure. Nil treats every fetch
	// error as transient.
	IsOutOfRange func(error) bool
	// Allow, optional, vets a task's key before anything is read: a task on
	// the bus may come from anyone who can publish there, and its key names
	// what is fetched and where its cache entry is written (cmd/supflow
	// allows only keys under the data set's prefix). A refusal is permanent.
	Allow func(key string) error
	// Cache keeps decoded images under CachePrefix; required when
	// Config.Cache is set, unused otherwise.
	Cache       Cache
	CachePrefix string
}

// Stage decodes tasks. It holds no per-call state (with the cache on, the
// indexes of the decoded shards it read: 32 bytes per member) and is safe
// for concurrent use.
type Stage struct {
	cfg        Config
	objects    Getter
	isNotFound func(error) bool
	isTooLarge func(error) bool
	isRange    func(error) bool
	allow      func(string) error
	cache      Cache // nil when Config.Cache is off
	prefix     string
	px         pxShards // the decoded shards' indexes read
	dec        *imgdecode.Decoder
	runBufs    bufpool.Pool // the bytes of runs whose members are done
}

// New returns a Stage for cfg with its unset fields defaulted, reading
// through deps. A bad Config or missing dependency gives an error wrapping
// ErrInvalidConfig; a bad Config's names each bad key.
func New(cfg Config, deps Deps) (*Stage, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if deps.Objects == nil {
		return nil, fmt.Errorf("%w: nil Deps.Objects", ErrInvalidConfig)
	}
	if cfg.Cache && deps.Cache == nil {
		return nil, fmt.Errorf("%w: cache is on but Deps.Cache is nil", ErrInvalidConfig)
	}
	dec, err := imgdecode.New(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s := &Stage{cfg: cfg, objects: deps.Objects, isNotFound: deps.IsNotFound, isTooLarge: deps.IsTooLarge, isRange: deps.IsOutOfRange, allow: deps.Allow, dec: dec}
	if cfg.Cache {
		s.cache, s.prefix = deps.Cache, deps.CachePrefix
		s.px = pxShards{index: map[string]pxIndex{}, absent: map[string]uint32{}}
	}
	return s, nil
}

// Handle fetches and decodes the object of task, or its shard member
// (task.Length > 0: one ranged GET). A transient fetch failure
// (including ctx ending) returns a plain error for the bus to retry; every
// failure retrying cannot fix wraps messages.ErrPermanent and names the key.
// Handle is idempotent: the same task yields the same Image. A batch's
// members of one shard are fetched together by Plan and HandleTask.
func (s *Stage) Handle(ctx context.Context, task messages.DecodeTask) (messages.Image, error) {
	return s.handle(ctx, task, nil)
}

// handle is Handle, taking a shard member's bytes from r when r is set.
func (s *Stage) handle(ctx context.Context, task messages.DecodeTask, r *run) (messages.Image, error) {
	if task.Key == "" {
		return messages.Image{}, messages.Permanent(fmt.Errorf("%w: empty key (run %q, sample %d)", ErrInvalidTask, task.RunID, task.SampleID))
	}
	if s.allow != nil {
		if err := s.allow(task.Key); err != nil {
			return messages.Image{}, messages.Permanent(fmt.Errorf("%w: sample %d: %w", ErrInvalidTask, task.SampleID, err))
		}
	}
	if s.cache != nil {
		img, ok := imgdecode.Image{}, false
		if task.Length > 0 {
			img, ok = s.decodedMember(ctx, task, r)
		} else {
			img, ok = s.cached(ctx, task.Key)
		}
		if ok {
			return imageOf(task, img), nil
		}
	}
	img, err := s.decodeTask(ctx, task, r)
	if err != nil {
		return messages.Image{}, err
	}
	if s.cache != nil && task.Length == 0 {
		s.store(ctx, task.Key, img) // a shard member's is its decoded shard's, built by BuildShards
	}
	return imageOf(task, img), nil
}

// decodeTask fetches and decodes task's image, taking a shard member's
// bytes from r when r is set.
func (s *Stage) decodeTask(ctx context.Context, task messages.DecodeTask, r *run) (imgdecode.Image, error) {
	// name is what errors call the image: its key, or its shard's key and
	// place there.
	name := task.Key
	if task.Length > 0 {
		name = fmt.Sprintf("%s@%d+%d", task.Key, task.Offset, task.Length)
	}
	data, err := s.fetch(ctx, task, r)
	switch {
	case err != nil && s.isNotFound != nil && s.isNotFound(err):
		return imgdecode.Image{}, messages.Permanent(fmt.Errorf("%w: %q: %w", ErrNotFound, name, err))
	case err != nil && s.isTooLarge != nil && s.isTooLarge(err):
		return imgdecode.Image{}, messages.Permanent(fmt.Errorf("%w: %q, limit %d bytes: %w", ErrObjectTooLarge, name, s.cfg.MaxObjectBytes, err))
	case err != nil && s.isRange != nil && s.isRange(err):
		return imgdecode.Image{}, messages.Permanent(fmt.Errorf("%w: %q: %w", ErrOutOfRange, name, err))
	case err != nil:
		return imgdecode.Image{}, fmt.Errorf("decode: fetch %q: %w", name, err)
	case int64(len(data)) > s.cfg.MaxObjectBytes:
		return imgdecode.Image{}, messages.Permanent(fmt.Errorf("%w: %q is %d bytes, limit %d", ErrObjectTooLarge, name, len(data), s.cfg.MaxObjectBytes))
	}
	img, err := s.dec.Decode(data)
	if err != nil {
		// imgdecode refuses only for what the bytes are: no retry helps.
		return imgdecode.Image{}, messages.Permanent(fmt.Errorf("decode: object %q: %w", name, err))
	}
	return img, nil
}

// fetch reads task's bytes: from r's GET when it has them, else with a GET
// of its own. Never more than the limit is read: the Getter refuses a
// larger object (or range) from its size.
func (s *Stage) fetch(ctx context.Context, task messages.DecodeTask, r *run) ([]byte, error) {
	if r != nil {
		if data, ok, err := s.member(ctx, r, task); ok || err != nil {
			return data, err
		}
	}
	if task.Length > 0 {
		return s.objects.GetRange(ctx, task.Key, int64(task.Offset), int64(task.Length), s.cfg.MaxObjectBytes)
	}
	return s.objects.GetMax(ctx, task.Key, s.cfg.MaxObjectBytes)
}

// permanent reports whether a fetch error is one retrying cannot fix.
func (s *Stage) permanent(err error) bool {
	return s.isNotFound != nil && s.isNotFound(err) || s.isTooLarge != nil && s.isTooLarge(err) || s.isRange != nil && s.isRange(err)
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
