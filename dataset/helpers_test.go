package dataset

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/supflow/supflow/store"
)

// memBucket is an in-memory Bucket, Statter and Getter.
type memBucket struct {
	mu   sync.Mutex
	objs map[string][]byte
	meta map[string]map[string]string
	puts int
}

func newMemBucket() *memBucket {
	return &memBucket{objs: map[string][]byte{}, meta: map[string]map[string]string{}}
}

func (m *memBucket) Put(_ context.Context, key string, data []byte, opts store.PutOptions) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = append([]byte(nil), data...)
	m.meta[key] = maps.Clone(opts.Metadata)
	m.puts++
	return nil
}

func (m *memBucket) Stat(_ context.Context, key string) (store.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.objs[key]
	if !ok {
		return store.ObjectInfo{}, fmt.Errorf("%w: %s", store.ErrNotFound, key)
	}
	return store.ObjectInfo{Key: key, Size: int64(len(d)), Metadata: m.meta[key]}, nil
}

func (m *memBucket) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, key)
	}
	return d, nil
}

// GetRange returns [off, off+n) of key's object; max is not checked.
func (m *memBucket) GetRange(ctx context.Context, key string, off, n, _ int64) ([]byte, error) {
	d, err := m.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 1 || off+n > int64(len(d)) {
		return nil, fmt.Errorf("%w: %s: %d bytes at %d", store.ErrOutOfRange, key, n, off)
	}
	return d[off : off+n], nil
}

func (m *memBucket) delete(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
}
