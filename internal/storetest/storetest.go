// Package storetest gives tests a real S3 client (package store) on an
// in-memory embedded S3 endpoint, or on a real MinIO server, so that code
// written against the bucket is tested through the same client and error
// mapping as in production. It is for tests only.
package storetest

import (
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
