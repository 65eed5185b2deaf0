package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/supflow/supflow/config/field/fieldtest"
	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/messages"
)

var (
	errMissing = errors.New("test: no such key")
	errTooBig  = errors.New("test: object over the limit")
	errPastEnd = errors.New("test: range past the end")
)

// memObjects is an in-memory Getter; keys listed in fail return that error.
// Like the store, it refuses an object over the limit from its size.
type memObjects struct {
	objects map[string][]byte
	fail    map[string]error
}

func (m memObjects) GetMax(ctx context.Context, key string, max int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.fail[key]; err != nil {
		return nil, err
	}
	b, ok := m.objects[key]
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, errMissing)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("get %q: %w: %d bytes, limit %d", key, errTooBig, len(b), max)
	}
	return b, nil
}

func isMissing(err error) bool { return errors.Is(err, errMissing) }
func isTooBig(err error) bool  { return errors.Is(err, errTooBig) }

func testImage(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, color.NRGBA{uint8(x * 8), uint8(y * 8), uint8(x + y), 255})
		}
	}
	return m
}

func pngBytes(t *testing.T, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestHandle(t *testing.T) {
	png := pngBytes(t, testImage(24, 16))
	objects := memObjects{
		objects: map[string][]byte{
			"ok.png":     png,
			"photo.jpg":  jpegBytes(t, testImage(64, 48)),
			"png.jpg":    png,
			"corrupt":    png[:len(png)/2],
			"text.jpg":   []byte("<Error>AccessDenied</Error>"),
			"empty":      {},
			"big.png":    pngBytes(t, image.NewGray(image.Rect(0, 0, 200, 200))),
			"large.blob": make([]byte, 2048),
		},
		fail: map[string]error{"flaky": errors.New("connection reset")},
	}
	tests := []struct {
		name      string
		cfg       Config
		noIsNF    bool // leave Deps.IsNotFound and IsTooLarge nil
		key       string
		wantSize  [3]int // width, height, channels
		wantErr   error  // nil: success
		permanent bool
	}{
		{name: "png", key: "ok.png", wantSize: [3]int{24, 16, 3}},
		{name: "png named jpg", key: "png.jpg", wantSize: [3]int{24, 16, 3}},
		{name: "gray", cfg: Config{Config: imgdecode.Config{Gray: true}}, key: "ok.png", wantSize: [3]int{24, 16, 1}},
		{name: "jpeg resized", cfg: Config{Config: imgdecode.Config{ResizeShorter: 12}}, key: "photo.jpg", wantSize: [3]int{16, 12, 3}},
		{name: "missing", key: "nope", wantErr: ErrNotFound, permanent: true},
		{name: "missing without IsNotFound is transient", noIsNF: true, key: "nope", wantErr: errMissing},
		{name: "transient fetch error", key: "flaky", wantErr: objects.fail["flaky"]},
		{name: "truncated", key: "corrupt", wantErr: imgdecode.ErrCorrupt, permanent: true},
		{name: "text named jpg", key: "text.jpg", wantErr: imgdecode.ErrFormat, permanent: true},
		{name: "zero bytes", key: "empty", wantErr: imgdecode.ErrEmpty, permanent: true},
		{name: "over pixel limit", cfg: Config{Config: imgdecode.Config{MaxPixels: 100 * 100}}, key: "big.png", wantErr: imgdecode.ErrTooLarge, permanent: true},
		{name: "over object limit", cfg: Config{MaxObjectBytes: 1024}, key: "large.blob", wantErr: ErrObjectTooLarge, permanent: true},
		{name: "over object limit without IsTooLarge is transient", noIsNF: true, cfg: Config{MaxObjectBytes: 1024}, key: "large.blob", wantErr: errTooBig},
		{name: "empty key", key: "", wantErr: ErrInvalidTask, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps := Deps{Objects: objects}
			if !tt.noIsNF {
				deps.IsNotFound, deps.IsTooLarge = isMissing, isTooBig
			}
			s, err := New(tt.cfg, deps)
			if err != nil {
				t.Fatal(err)
			}
			task := messages.DecodeTask{RunID: "run1", Epoch: 3, SampleID: 42, Key: tt.key, Label: 7, Split: "train"}
			img, err := s.Handle(context.Background(), task)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || errors.Is(err, messages.ErrPermanent) != tt.permanent {
					t.Fatalf("err = %v, want %v with permanent=%v", err, tt.wantErr, tt.permanent)
				}
				if tt.key != "" && !strings.Contains(err.Error(), tt.key) {
					t.Fatalf("error %q does not name the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := messages.Image{RunID: "run1", Epoch: 3, SampleID: 42, Label: 7, Split: "train",
				Width: uint32(tt.wantSize[0]), Height: uint32(tt.wantSize[1]), Channels: uint8(tt.wantSize[2])}
			got := img
			got.Pixels = nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("image = %+v, want %+v", got, want)
			}
			if len(img.Pixels) != tt.wantSize[0]*tt.wantSize[1]*tt.wantSize[2] {
				t.Fatalf("%d pixel bytes for %v", len(img.Pixels), tt.wantSize)
			}
		})
	}
}

func TestHandleCanceled(t *testing.T) {
	s, err := New(Config{}, Deps{Objects: memObjects{objects: map[string][]byte{"a": pngBytes(t, testImage(2, 2))}}, IsNotFound: isMissing})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Handle(ctx, messages.DecodeTask{Key: "a"})
	if !errors.Is(err, context.Canceled) || errors.Is(err, messages.ErrPermanent) {
		t.Fatalf("err = %v, want a transient context.Canceled", err)
	}
}

func TestNewValidates(t *testing.T) {
	objects := memObjects{}
	tests := []struct {
		name    string
		cfg     Config
		objects Getter
		ok      bool
	}{
		{"zero config", Config{}, objects, true},
		{"all set", Config{Workers: 3, Config: imgdecode.Config{MaxPixels: 1 << 20, ResizeShorter: 32, Gray: true}, MaxObjectBytes: 1 << 20}, objects, true},
		{"nil getter", Config{}, nil, false},
		{"negative workers", Config{Workers: -1}, objects, false},
		{"negative object limit", Config{MaxObjectBytes: -1}, objects, false},
		{"negative pixel limit", Config{Config: imgdecode.Config{MaxPixels: -1}}, objects, false},
		{"negative resize", Config{Config: imgdecode.Config{ResizeShorter: -5}}, objects, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, Deps{Objects: tt.objects, IsNotFound: isMissing})
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("New = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestValidate: each bad value is named by its key in pipeline.yaml's
// decode section, the image settings included.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		key  string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"largest", func(c *Config) { c.Workers, c.MaxPixels, c.MaxObjectBytes = maxWorkers, 1<<31-1, maxMaxObjectBytes }, ""},
		{"no workers", func(c *Config) { c.Workers = 0 }, "workers"},
		{"too many workers", func(c *Config) { c.Workers = maxWorkers + 1 }, "workers"},
		{"max_pixels 0 is not defaulted", func(c *Config) { c.MaxPixels = 0 }, "max_pixels"},
		{"max_pixels too big", func(c *Config) { c.MaxPixels = 1 << 31 }, "max_pixels"},
		{"max_object_bytes 0", func(c *Config) { c.MaxObjectBytes = 0 }, "max_object_bytes"},
		{"max_object_bytes too big", func(c *Config) { c.MaxObjectBytes = maxMaxObjectBytes + 1 }, "max_object_bytes"},
		{"resize_shorter negative", func(c *Config) { c.ResizeShorter = -1 }, "resize_shorter"},
		{"resize_shorter too big", func(c *Config) { c.ResizeShorter = 1<<14 + 1 }, "resize_shorter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			if err := fieldtest.Check(c.Validate(), tt.key, ErrInvalidConfig); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	want := Config{Workers: 2, Config: imgdecode.Config{MaxPixels: 50_000_000}, MaxObjectBytes: 64 << 20}
	if c := DefaultConfig(); c != want {
		t.Errorf("DefaultConfig = %+v, want %+v", c, want)
	}
	var zero Config
	zero.setDefaults()
	if zero != want {
		t.Errorf("zero Config with defaults = %+v, want %+v", zero, want)
	}
}

func TestHandleConcurrent(t *testing.T) {
	objects := memObjects{objects: map[string][]byte{}}
	for i := range 16 {
		objects.objects[fmt.Sprint(i)] = jpegBytes(t, testImage(40+i, 30))
	}
	s, err := New(Config{Config: imgdecode.Config{ResizeShorter: 20}}, Deps{Objects: objects, IsNotFound: isMissing})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Go(func() {
			for i := range 16 {
				key := fmt.Sprint((i + w) % 16)
				img, err := s.Handle(context.Background(), messages.DecodeTask{Key: key, SampleID: uint64(i)})
				if err == nil && (img.Height != 20 || img.SampleID != uint64(i)) {
					err = fmt.Errorf("key %s: got %dx%d sample %d", key, img.Width, img.Height, img.SampleID)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// GetRange serves bytes [off, off+n) of key, refusing as the store does.
func (m memObjects) GetRange(ctx context.Context, key string, off, n, max int64) ([]byte, error) {
	if n > max {
		return nil, fmt.Errorf("get %q: %w: range of %d bytes, limit %d", key, errTooBig, n, max)
	}
	b, err := m.GetMax(ctx, key, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 1 || off+n > int64(len(b)) {
		return nil, fmt.Errorf("get %q: %w: %d bytes at %d of %d", key, errPastEnd, n, off, len(b))
	}
	return b[off : off+n], nil
}

// sizedObjects serves one object of size bytes and records what it was
// asked for and how much it handed out.
type sizedObjects struct {
	size        int
	honorMax    bool // refuse over max from the size, as the store does
	mu          sync.Mutex
	maxes       []int64
	bytesServed int
}

func (o *sizedObjects) GetRange(context.Context, string, int64, int64, int64) ([]byte, error) {
	return nil, errors.New("test: sizedObjects serves whole objects only")
}

func (o *sizedObjects) GetMax(_ context.Context, _ string, max int64) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.maxes = append(o.maxes, max)
	if o.honorMax && int64(o.size) > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooBig, o.size, max)
	}
	o.bytesServed += o.size
	return make([]byte, o.size), nil
}

// TestObjectSizeLimitIsBoundedAndPermanent: every fetch asks for at most
// decode.max_object_bytes, so an object over it is refused from its size
// with nothing of its body read, as a permanent failure at the first
// delivery (not retried until max_deliver as a transient one); a Getter
// that hands out more than asked anyway is refused the same way.
func TestObjectSizeLimitIsBoundedAndPermanent(t *testing.T) {
	for _, limit := range []int64{1, 1000, 1 << 20} {
		for _, size := range []int{int(limit) + 1, 2 * int(limit), int(limit) + 4096} {
			for _, honor := range []bool{true, false} {
				objs := &sizedObjects{size: size, honorMax: honor}
				s, err := New(Config{MaxObjectBytes: limit}, Deps{Objects: objs, IsNotFound: isMissing, IsTooLarge: isTooBig})
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.Handle(t.Context(), messages.DecodeTask{RunID: "r", SampleID: 1, Key: "k.png"})
				if !errors.Is(err, ErrObjectTooLarge) || !errors.Is(err, messages.ErrPermanent) {
					t.Errorf("limit %d, %d-byte object (Getter honors max: %v): %v, want permanent ErrObjectTooLarge", limit, size, honor, err)
				}
				if len(objs.maxes) != 1 || objs.maxes[0] != limit {
					t.Errorf("limit %d: fetched with max %v, want once with %d", limit, objs.maxes, limit)
				}
				if honor && objs.bytesServed != 0 {
					t.Errorf("limit %d: %d bytes read of an object over it", limit, objs.bytesServed)
				}
			}
		}
	}
}

// TestShardMembers: a task naming a shard member decodes the member's
// bytes alone, as the same image stored whole; a member past its shard's
// end or over the object limit is a permanent failure naming the shard
// and the place, also with the cache on (a member has no entry of its own:
// its shard's decoded shard holds it, BuildShard).
func TestShardMembers(t *testing.T) {
	a, b := pngBytes(t, testImage(3, 2)), pngBytes(t, testImage(2, 5))
	shard := append(append(append([]byte("head"), a...), b...), "tail"...)
	objs := memObjects{objects: map[string][]byte{"a.png": a, "s.tar": shard}}
	isPastEnd := func(err error) bool { return errors.Is(err, errPastEnd) }
	cache := &memCache{m: map[string][]byte{}}
	s, err := New(Config{MaxObjectBytes: int64(max(len(a), len(b))), Cache: true}, Deps{Objects: objs, IsNotFound: isMissing,
		IsTooLarge: isTooBig, IsOutOfRange: isPastEnd, Cache: cache, CachePrefix: "c"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	whole, err := s.Handle(ctx, messages.DecodeTask{RunID: "r", Key: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time as the first: no decoded shard
		got, err := s.Handle(ctx, messages.DecodeTask{RunID: "r", Key: "s.tar", Offset: 4, Length: uint32(len(a))})
		if err != nil || !bytes.Equal(got.Pixels, whole.Pixels) || got.Height != whole.Height {
			t.Fatalf("member a = %dx%d, %v", got.Height, got.Width, err)
		}
		got, err = s.Handle(ctx, messages.DecodeTask{RunID: "r", Key: "s.tar", Offset: uint64(4 + len(a)), Length: uint32(len(b))})
		if err != nil || got.Height != 5 || got.Width != 2 {
			t.Fatalf("member b = %dx%d, %v", got.Height, got.Width, err)
		}
	}
	if _, ok := cache.m["c/r0-rgb/a.png.px"]; !ok || len(cache.m) != 1 {
		t.Errorf("cache keys %v, want the loose object's alone", slices.Collect(maps.Keys(cache.m)))
	}
	for _, c := range []struct {
		task messages.DecodeTask
		want error
	}{
		{messages.DecodeTask{RunID: "r", Key: "s.tar", Offset: uint64(len(shard) - 2), Length: 4}, ErrOutOfRange},
		{messages.DecodeTask{RunID: "r", Key: "s.tar", Offset: 4, Length: uint32(max(len(a), len(b))) + 1}, ErrObjectTooLarge},
		{messages.DecodeTask{RunID: "r", Key: "none.tar", Offset: 4, Length: 4}, ErrNotFound},
		{messages.DecodeTask{RunID: "r", Key: "s.tar", Offset: 0, Length: 4}, imgdecode.ErrFormat},
	} {
		_, err := s.Handle(ctx, c.task)
		if !errors.Is(err, c.want) || !errors.Is(err, messages.ErrPermanent) || !strings.Contains(err.Error(), fmt.Sprintf("@%d+%d", c.task.Offset, c.task.Length)) {
			t.Errorf("%+v: %v, want permanent %v naming the member", c.task, err, c.want)
		}
	}
}
