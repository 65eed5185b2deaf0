// Package storetest gives tests a real S3 client (package store) on an
// in-memory embedded S3 endpoint, or on a real MinIO server, so that code
// written against the bucket is tested through the same client and error
// mapping as in production. It is for tests only.
package storetest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/supflow/supflow/internal/miniotest"
	"github.com/supflow/supflow/store"
)

// New starts an in-memory endpoint for the test and returns a client of a
// fresh bucket on it; both are closed when the test ends.
func New(t testing.TB) *store.Client {
	t.Helper()
	e, err := store.StartEmbedded(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	c, err := store.New(e.Config("test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// MinIO starts a MinIO server for the test (miniotest.Start) and returns a
// client of a new bucket named bucket on it.
func MinIO(t testing.TB, bucket string) *store.Client {
	t.Helper()
	s := miniotest.Start(t)
	ak, sk := s.Credentials()
	c, err := store.New(store.Config{Endpoint: s.Endpoint(), Bucket: bucket, AccessKey: ak, SecretKey: sk})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

// Truncate cuts object key of c to its first n bytes, as a partly written
// or damaged shard would be.
func Truncate(t testing.TB, c *store.Client, key string, n int64) {
	t.Helper()
	b, err := c.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if n > int64(len(b)) {
		t.Fatalf("truncate %s to %d bytes: it has %d", key, n, len(b))
	}
	if err := c.Put(t.Context(), key, b[:n], store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// CountingBlobs is the bucket as decode's decoded-shard cache (store.Blobs),
// counting its ranged GETs.
type CountingBlobs struct {
	store.Blobs
	Ranges atomic.Int64
}

func (b *CountingBlobs) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b.Ranges.Add(1)
	return b.Blobs.GetRange(ctx, key, off, n)
}
