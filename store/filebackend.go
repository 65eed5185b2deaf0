package store

import (
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// fileBackend is the embedded endpoint's backend for objects kept in files:
// gofakes3's afero backend, with GETs served from the object's file and
// metadata held in memory. For every GET the afero backend takes one lock
// for all requests, stats the bucket and the file, and reads and decodes
// the object's JSON metadata file: about a third of the CPU of a 20 KB
// ranged read (docs/benchmarks.md, "A file backend for the embedded S3").
// A cached entry is used only while the opened file still has the size and
// modification time it was cached with, and every change made through the
// backend drops what it touches, so files changed behind its back (or
// while it read them) are read as the afero backend reads them.
type fileBackend struct {
	gofakes3.Backend          // the afero backend: everything but GET
	objects          afero.Fs // the afero backend's bucket folder

	mu      sync.Mutex
	changes uint64 // changes made through the backend, for racing fills
	meta    map[string]fileMeta
	max     int // the most entries meta holds
}

// maxCachedFiles bounds the metadata held (about 1.5 KB an object): the
// shards of a large data set fit (ImageNet in shards of 64 MB: about
// 2,200), while loose objects, each read once an epoch, would only fill
// the heap the GC scans (40,000 of them cost the bench's pipeline rows
// more CPU in marking than the cache saved).
const maxCachedFiles = 4096

// fileMeta is what a GET needs besides the bytes.
type fileMeta struct {
	size  int64
	mtime time.Time
	hash  []byte
	meta  map[string]string // read-only once cached: responses only range over it
}

// newFileBackend keeps the objects in files under dir, through the afero
// backend (buckets under dir/buckets, their metadata under dir/metadata).
func newFileBackend(dir string) (*fileBackend, error) {
	fs := afero.NewBasePathFs(afero.NewOsFs(), dir)
	inner, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, err
	}
	objects := afero.NewBasePathFs(fs, "buckets") // where MultiBucket keeps them
	return &fileBackend{Backend: inner, objects: objects, meta: map[string]fileMeta{}, max: maxCachedFiles}, nil
}

// GetObject serves a GET from the file; anything unusual (a missing file
// or bucket, a folder, an unreadable file) goes to the afero backend, which
// returns the error S3 clients expect.
func (b *fileBackend) GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	f, err := b.objects.Open(filepath.FromSlash(path.Join(bucket, key)))
	if err != nil {
		return b.Backend.GetObject(bucket, key, rng)
	}
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		f.Close()
		return b.Backend.GetObject(bucket, key, rng)
	}
	m, ok := b.cached(bucket, key, st)
	if !ok {
		f.Close()
		return b.Backend.GetObject(bucket, key, rng)
	}
	r, err := rng.Range(m.size)
	if err != nil {
		f.Close()
		return nil, err
	}
	body := io.ReadCloser(f)
	if r != nil {
		body = sectionCloser{io.NewSectionReader(f, r.Start, r.Length), f}
	}
	return &gofakes3.Object{Name: key, Hash: m.hash, Metadata: m.meta, Range: r, Size: m.size, Contents: body}, nil
}

// cached returns the metadata of the file st describes, from memory or,
// the first time, from the afero backend's HEAD. It reports false when the
// file changed while it looked.
func (b *fileBackend) cached(bucket, key string, st os.FileInfo) (fileMeta, bool) {
	id := bucket + "/" + key
	b.mu.Lock()
	m, ok := b.meta[id]
	changes := b.changes
	b.mu.Unlock()
	if ok && m.size == st.Size() && m.mtime.Equal(st.ModTime()) {
		return m, true
	}
	head, err := b.Backend.HeadObject(bucket, key)
	if err != nil {
		return fileMeta{}, false
	}
	head.Contents.Close()
	if head.Size != st.Size() {
		return fileMeta{}, false
	}
	m = fileMeta{size: head.Size, mtime: st.ModTime(), hash: head.Hash, meta: head.Metadata}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changes != changes {
		return m, true // good for this read, maybe not for the next
	}
	if len(b.meta) >= b.max {
		for k := range b.meta { // a random one: Go's map order
			delete(b.meta, k)
			break
		}
	}
	b.meta[id] = m
	return m, true
}

// forget drops the cached metadata of bucket's keys (all of them when
// keys is empty) and makes fills that began before it not stick.
func (b *fileBackend) forget(bucket string, keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.changes++
	if len(keys) == 0 {
		clear(b.meta) // a bucket's removal is rare: start again
		return
	}
	for _, k := range keys {
		delete(b.meta, bucket+"/"+k)
	}
}

func (b *fileBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	defer b.forget(bucket, key)
	return b.Backend.PutObject(bucket, key, meta, input, size, cond)
}

func (b *fileBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	defer b.forget(dstBucket, dstKey)
	return b.Backend.CopyObject(srcBucket, srcKey, dstBucket, dstKey, meta)
}

func (b *fileBackend) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	defer b.forget(bucket, key)
	return b.Backend.DeleteObject(bucket, key)
}

func (b *fileBackend) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	defer b.forget(bucket, keys...)
	return b.Backend.DeleteMulti(bucket, keys...)
}

func (b *fileBackend) DeleteBucket(bucket string) error {
	defer b.forget(bucket)
	return b.Backend.DeleteBucket(bucket)
}

func (b *fileBackend) ForceDeleteBucket(bucket string) error {
	defer b.forget(bucket)
	return b.Backend.ForceDeleteBucket(bucket)
}

// sectionCloser is a range of a file that closes the file.
type sectionCloser struct {
	*io.SectionReader
	f afero.File
}

func (s sectionCloser) Close() error { return s.f.Close() }
