package store

import (
	"fmt"
	"io"

	"github.com/johannesboyne/gofakes3"
)

// objectReader is the read method of the embedded endpoint's backend.
type objectReader interface {
	GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error)
}

// local reads the objects of an embedded endpoint in the process that
// runs it straight from its backend: the GETs of `supflow run`'s decode
// workers, which over the in-memory pipe still cost a request's signing,
// HTTP framing on both sides and the server's routing, about 95 us of CPU
// for a 20 KB range: a quarter of what the bus and S3 added to a gray
// 28 px sample (docs/benchmarks.md, "Reads in process from the embedded
// S3"). Only GETs take this path, only with the endpoint's own
// credentials (another key is refused over HTTP, as before) and only while
// the endpoint runs; the answers are the protocol's (runContract holds
// both paths to the same suite).
type local struct {
	objects              objectReader
	accessKey, secretKey string
	closed               <-chan struct{} // closed once the endpoint stops
}

// admits reports whether cfg may read locally: the endpoint's credentials.
func (l *local) admits(cfg Config) bool {
	return l != nil && cfg.AccessKey == l.accessKey && cfg.SecretKey == l.secretKey && cfg.SessionToken == ""
}

// open reports whether the endpoint still runs: once it stopped, reads go
// to the protocol, which answers as for any endpoint that went away.
func (l *local) open() bool {
	select {
	case <-l.closed:
		return false
	default:
		return true
	}
}

// get appends key, or [off, off+n) of it when n > 0, from the backend to
// dst; check sees the size before any byte is read, as for a GET.
func (l *local) get(dst []byte, bucket, op, key string, off, n int64, check func(size int64) error) ([]byte, error) {
	var rng *gofakes3.ObjectRangeRequest
	if n > 0 {
		rng = &gofakes3.ObjectRangeRequest{Start: off, End: off + n - 1}
	}
	obj, err := l.objects.GetObject(bucket, key, rng)
	if err != nil {
		return nil, localError(op, key, err)
	}
	defer obj.Contents.Close()
	size := obj.Size
	if obj.Range != nil {
		size = obj.Range.Length
	}
	if err := check(size); err != nil {
		return nil, err
	}
	data := grow(dst, size)
	if _, err := io.ReadFull(obj.Contents, data[len(dst):]); err != nil {
		return nil, fmt.Errorf("store: %s %q in process: %w", op, key, err)
	}
	return data, nil
}

// localError maps the backend's S3 error codes to the sentinels, as
// s3Error maps the same codes over HTTP.
func localError(op, key string, err error) error {
	if e, ok := err.(gofakes3.Error); ok {
		if sentinel := codeSentinel(string(e.ErrorCode())); sentinel != nil {
			return fmt.Errorf("%w: %s %q: %s (in process)", sentinel, op, key, e.ErrorCode())
		}
	}
	return fmt.Errorf("store: %s %q in process: %w", op, key, err)
}
