package store

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// TestFileBackendReadsAsAfero checks every GET of fileBackend against the
// afero backend's own GET of the same object, through changes made through
// it and changes made to the files behind its back.
func TestFileBackendReadsAsAfero(t *testing.T) {
	dir := t.TempDir()
	b := bucketOnFiles(t, dir)
	inner := b.Backend
	file := filepath.Join(dir, "buckets", "b", "k")
	put := func(s string) {
		t.Helper()
		if _, err := b.PutObject("b", "k", map[string]string{"X-Amz-Meta-V": s}, bytes.NewReader([]byte(s)), int64(len(s)), nil); err != nil {
			t.Fatal(err)
		}
	}
	// same checks one GET (whole, then a range) against the afero backend's.
	same := func(want string) {
		t.Helper()
		for _, rng := range []*gofakes3.ObjectRangeRequest{nil, {Start: 1, End: 3}} {
			for range 2 { // the second from what the first cached
				got, gotBody := get(t, b, rng)
				ref, refBody := get(t, inner, rng)
				got.Contents, ref.Contents = nil, nil
				if !reflect.DeepEqual(got, ref) || gotBody != refBody {
					t.Fatalf("GET %+v = %+v %q, afero's %+v %q", rng, got, gotBody, ref, refBody)
				}
			}
		}
		if _, body := get(t, b, nil); body != want {
			t.Fatalf("GET = %q, want %q", body, want)
		}
	}
	put("hello")
	same("hello")
	put("goodbye") // through the backend
	same("goodbye")
	if err := os.WriteFile(file, []byte("behind its back"), 0o600); err != nil { // another size
		t.Fatal(err)
	}
	same("behind its back")
	if err := os.WriteFile(file, []byte("BEHIND ITS BACK"), 0o600); err != nil { // same size, later mtime
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	same("BEHIND ITS BACK")

	if _, err := b.DeleteObject("b", "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetObject("b", "k", nil); !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
		t.Fatalf("GET after delete = %v, want NoSuchKey", err)
	}
	put("again")
	same("again")
	if err := b.ForceDeleteBucket("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetObject("b", "k", nil); !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchBucket) {
		t.Fatalf("GET after the bucket's removal = %v, want NoSuchBucket", err)
	}
}

func get(t *testing.T, b gofakes3.Backend, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, string) {
	t.Helper()
	o, err := b.GetObject("b", "k", rng)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Contents.Close()
	body, err := io.ReadAll(o.Contents)
	if err != nil {
		t.Fatal(err)
	}
	return o, string(body)
}

// TestFileBackendBoundsItsCache reads more objects than the cache holds:
// every GET is right and the cache stays at its bound.
func TestFileBackendBoundsItsCache(t *testing.T) {
	b := bucketOnFiles(t, t.TempDir())
	b.max = 3
	for round := range 2 {
		for i := range 10 {
			key, want := fmt.Sprintf("k%d", i), fmt.Sprintf("object %d", i)
			if round == 0 {
				if _, err := b.PutObject("b", key, nil, strings.NewReader(want), int64(len(want)), nil); err != nil {
					t.Fatal(err)
				}
			}
			o, err := b.GetObject("b", key, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(o.Contents)
			o.Contents.Close()
			if err != nil || string(got) != want {
				t.Fatalf("GET %s = %q, %v", key, got, err)
			}
		}
	}
	if n := len(b.meta); n != b.max {
		t.Errorf("cache holds %d objects, want %d", n, b.max)
	}
}

// bucketOnFiles returns a fileBackend on dir with the bucket "b".
func bucketOnFiles(t *testing.T, dir string) *fileBackend {
	t.Helper()
	b, err := newFileBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateBucket("b"); err != nil {
		t.Fatal(err)
	}
	return b
}
