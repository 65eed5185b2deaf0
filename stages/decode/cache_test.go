package decode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/supflow/supflow/imgdecode"
	"github.com/supflow/supflow/messages"
)

// memCache is an in-memory Cache; a missing key returns errMissing.
type memCache struct {
	mu      sync.Mutex
	m       map[string][]byte
	failPut bool
	puts    int
}

func (c *memCache) Get(_ context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[key]
	if !ok {
		return nil, errMissing
	}
	return b, nil
}

func (c *memCache) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := c.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || off+n > int64(len(b)) {
		return nil, fmt.Errorf("get %q: %w: %d bytes at %d of %d", key, errPastEnd, n, off, len(b))
	}
	return b[off : off+n], nil
}

func (c *memCache) Put(_ context.Context, key string, b []byte) error {
	c.mu.Lock()
	c.puts++
	c.mu.Unlock()
	if c.failPut {
		return errors.New("cache unavailable")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = append([]byte(nil), b...)
	return nil
}

// countingObjects counts fetches of the originals.
type countingObjects struct {
	memObjects
	mu sync.Mutex
	n  int
}

func (c *countingObjects) GetMax(ctx context.Context, key string, max int64) ([]byte, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.memObjects.GetMax(ctx, key, max)
}

func TestCacheSkipsFetchAndDecode(t *testing.T) {
	objs := &countingObjects{memObjects: memObjects{objects: map[string][]byte{"a.png": pngBytes(t, testImage(9, 7))}}}
	cache := &memCache{m: map[string][]byte{}}
	s, err := New(Config{Config: imgdecode.Config{ResizeShorter: 4}, Cache: true}, Deps{Objects: objs, Cache: cache, CachePrefix: "cache", IsNotFound: isMissing})
	if err != nil {
		t.Fatal(err)
	}
	task := messages.DecodeTask{RunID: "r", Epoch: 1, SampleID: 3, Key: "a.png", Label: 2, Split: "train"}
	first, err := s.Handle(context.Background(), task)
	if err != nil {
		t.Fatal(err)
	}
	task.Epoch = 2
	second, err := s.Handle(context.Background(), task)
	if err != nil {
		t.Fatal(err)
	}
	if objs.n != 1 {
		t.Errorf("original fetched %d times, want 1", objs.n)
	}
	if cache.puts != 1 {
		t.Errorf("%d cache writes, want 1", cache.puts)
	}
	if second.Epoch != 2 || second.Height != first.Height || second.Width != first.Width || !bytes.Equal(second.Pixels, first.Pixels) {
		t.Errorf("cached image differs: %+v vs %+v", second, first)
	}
	if _, ok := cache.m["cache/r4-rgb/a.png.px"]; !ok {
		t.Errorf("cache keys %v", cache.m)
	}
}

func TestCacheFailuresNeverFailADecode(t *testing.T) {
	objs := memObjects{objects: map[string][]byte{"a.png": pngBytes(t, testImage(5, 5))}}
	cache := &memCache{m: map[string][]byte{"c/r0-rgb/a.png.px": []byte("SFPX\x01garbage")}, failPut: true}
	s, err := New(Config{Cache: true}, Deps{Objects: objs, Cache: cache, CachePrefix: "c", IsNotFound: isMissing})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Handle(context.Background(), messages.DecodeTask{Key: "a.png"})
	if err != nil || img.Width != 5 {
		t.Fatalf("img %dx%d, err %v", img.Width, img.Height, err)
	}
	if cache.puts != 1 { // the corrupt entry was read, then rewritten (and that failed)
		t.Errorf("%d cache writes, want 1", cache.puts)
	}
}

func FuzzCacheEntry(f *testing.F) {
	f.Add([]byte("SFPX\x01\x01\x00\x00\x00\x01\x00\x00\x00\x01\x07"))
	f.Add([]byte("SFPX"))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := decodeCacheEntry(b, 1<<20)
		if err == nil && len(img.Pix) != img.Height*img.Width*img.Channels {
			t.Fatalf("entry %dx%dx%d with %d bytes accepted", img.Height, img.Width, img.Channels, len(img.Pix))
		}
	})
}

// TestCacheOnlyWhenConfigured: Deps.Cache is used only with Config.Cache,
// and Config.Cache needs it.
func TestCacheOnlyWhenConfigured(t *testing.T) {
	objs := memObjects{objects: map[string][]byte{"a.png": pngBytes(t, testImage(5, 5))}}
	cache := &memCache{m: map[string][]byte{}}
	s, err := New(Config{}, Deps{Objects: objs, Cache: cache, CachePrefix: "c", IsNotFound: isMissing})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Handle(context.Background(), messages.DecodeTask{Key: "a.png"}); err != nil {
		t.Fatal(err)
	}
	if len(cache.m) != 0 {
		t.Errorf("cache written with Config.Cache off: %v", cache.m)
	}
	if _, err := New(Config{Cache: true}, Deps{Objects: objs}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with cache on and no Deps.Cache = %v, want ErrInvalidConfig", err)
	}
}

// TestAllowRefusesBeforeAnyRead: a task whose key Deps.Allow refuses is a
// permanent failure (dead-lettered, not retried), and nothing is fetched
// or cached for it.
func TestAllowRefusesBeforeAnyRead(t *testing.T) {
	objs := &countingObjects{memObjects: memObjects{objects: map[string][]byte{"ds/a.png": pngBytes(t, testImage(5, 5))}}}
	cache := &memCache{m: map[string][]byte{}}
	allow := func(key string) error {
		if !strings.HasPrefix(key, "ds/") || strings.Contains(key, "..") {
			return errors.New("outside the data set")
		}
		return nil
	}
	s, err := New(Config{Cache: true}, Deps{Objects: objs, Allow: allow, Cache: cache, CachePrefix: "c", IsNotFound: isMissing})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ds/../runs/x/checkpoints/last.safetensors", "other/a.png"} {
		_, err := s.Handle(t.Context(), messages.DecodeTask{Key: key})
		if !errors.Is(err, messages.ErrPermanent) || !errors.Is(err, ErrInvalidTask) {
			t.Errorf("key %q: %v, want a permanent ErrInvalidTask", key, err)
		}
	}
	if objs.n != 0 || len(cache.m) != 0 {
		t.Fatalf("refused tasks fetched %d objects, cached %d", objs.n, len(cache.m))
	}
	if _, err := s.Handle(t.Context(), messages.DecodeTask{Key: "ds/a.png"}); err != nil {
		t.Fatal(err)
	}
}
