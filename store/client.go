package store

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Client reads and writes the objects of one bucket. It is safe for
// concurrent use. Every call retries transient failures (see
// Config.RetryFor) until its context ends.
type Client struct {
	cfg      Config
	mc       *minio.Client
	endpoint string // scheme://host:port, for error messages
	listPage int    // objects per listing request; 0 = the server's default (1000)
	local    *local // the embedded endpoint of this process, for GETs without the protocol
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string
	ContentType  string
	LastModified time.Time
	// Metadata holds the user metadata, keys in lower case without the
	// x-amz-meta- prefix.
	Metadata map[string]string
}

// PutOptions are the optional fields of Put; the zero value is valid.
type PutOptions struct {
	ContentType string
	// Metadata is stored as user metadata (x-amz-meta-<key>); keys are
	// lower-cased.
	Metadata map[string]string
}

// New validates cfg and builds a Client. It does no I/O: call Check or
// EnsureBucket to find a wrong endpoint or bucket early.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, secure, _ := cfg.hostAndScheme()
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("store: transport: %w", err)
	}
	if cfg.Dialer != nil {
		tr.DialContext = cfg.Dialer.DialContext
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: ca_file: %w", ErrInvalidConfig, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca_file %s holds no PEM certificate", ErrInvalidConfig, cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	} else {
		creds = credentials.New(&credentials.Static{}) // explicitly allowed anonymous
	}
	mc, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1, // the Client's own loop retries, bounded by RetryFor and ctx
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	scheme := "http"
	if secure {
		scheme = "https"
	}
	c := &Client{cfg: cfg, mc: mc, endpoint: scheme + "://" + host}
	if p, ok := cfg.Dialer.(*pipeListener); ok && p.local.admits(cfg) {
		c.local = p.local
	}
	return c, nil
}

// Bucket returns the bucket the Client works on.
func (c *Client) Bucket() string { return c.cfg.Bucket }

// MaxObjectSize returns the size limit Get applies.
func (c *Client) MaxObjectSize() int64 { return c.cfg.MaxObjectSize }

// Check makes one request, without retries and bounded by
// Config.CheckTimeout, to confirm that the endpoint answers, the credentials
// are accepted and the bucket exists. A wrong endpoint gives ErrUnavailable.
func (c *Client) Check(ctx context.Context) error {
	ok, err := c.bucketExists(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s at %s", ErrNoSuchBucket, c.cfg.Bucket, c.endpoint)
	}
	return nil
}

// EnsureBucket creates the bucket if it does not exist. Like Check, its
// first request is not retried, so a wrong endpoint fails fast.
func (c *Client) EnsureBucket(ctx context.Context) error {
	ok, err := c.bucketExists(ctx)
	if err != nil || ok {
		return err
	}
	err = c.mc.MakeBucket(ctx, c.cfg.Bucket, minio.MakeBucketOptions{Region: c.cfg.Region})
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists") {
		return nil // created concurrently by another process
	}
	if err != nil {
		return fmt.Errorf("store: create bucket %s at %s: %w", c.cfg.Bucket, c.endpoint, s3Error("make bucket", c.cfg.Bucket, err))
	}
	return nil
}

func (c *Client) bucketExists(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CheckTimeout)
	defer cancel()
	ok, err := c.mc.BucketExists(ctx, c.cfg.Bucket)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, c.cfg.CheckTimeout, err)
		}
		hint := ""
		var resp minio.ErrorResponse
		if errors.As(err, &resp) && resp.StatusCode == http.StatusBadRequest && strings.HasPrefix(c.endpoint, "http:") {
			// What an HTTPS server answers a plain HTTP request; HEAD carries no S3 error code.
			hint = " (is the endpoint HTTPS? set store.secure: true)"
		}
		return false, fmt.Errorf("store: check bucket %s at %s: %w%s", c.cfg.Bucket, c.endpoint, s3Error("bucket exists", c.cfg.Bucket, err), hint)
	}
	return ok, nil
}

// Get returns the whole object. An object larger than Config.MaxObjectSize
// is refused with ErrTooLarge before its body is read; a missing one gives
// ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	return c.GetMax(ctx, key, c.cfg.MaxObjectSize)
}

// GetMax is Get with a lower size limit for this call: an object larger
// than max (or than Config.MaxObjectSize, whichever is lower) is refused
// with ErrTooLarge from its size, before any of its body is read, and no
// more than that many bytes are ever read. ErrTooLarge is not retried:
// the same object keeps its size.
func (c *Client) GetMax(ctx context.Context, key string, max int64) ([]byte, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	limit := min(max, c.cfg.MaxObjectSize)
	if limit < 0 {
		limit = 0
	}
	return c.get(ctx, nil, "get", key, 0, 0, func(size int64) error {
		if size < 0 {
			return fmt.Errorf("%w: %q: no size given", ErrIntegrity, key)
		}
		if size > limit {
			return fmt.Errorf("%w: %q is %d bytes, limit %d", ErrTooLarge, key, size, limit)
		}
		return nil
	})
}

// GetRange returns bytes [off, off+n) of the object at key: one ranged GET,
// how decode reads a sample out of a shard. n over max (or over
// Config.MaxObjectSize) is refused with ErrTooLarge before any request,
// as GetMax refuses a large object; a range that is not wholly inside the
// object (a truncated shard, a wrong offset) gives ErrOutOfRange.
func (c *Client) GetRange(ctx context.Context, key string, off, n, max int64) ([]byte, error) {
	return c.AppendRange(ctx, nil, key, off, n, max)
}

// AppendRange is GetRange appending the bytes to dst, so that a reader of
// many ranges (decode's shard runs) reuses its buffers instead of faulting
// in fresh memory for each.
func (c *Client) AppendRange(ctx context.Context, dst []byte, key string, off, n, max int64) ([]byte, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	switch {
	case off < 0 || n < 1:
		return nil, fmt.Errorf("%w: %q: range of %d bytes at %d", ErrOutOfRange, key, n, off)
	case n > min(max, c.cfg.MaxObjectSize):
		return nil, fmt.Errorf("%w: %q: range of %d bytes, limit %d", ErrTooLarge, key, n, min(max, c.cfg.MaxObjectSize))
	}
	return c.get(ctx, dst, "get range", key, off, n, func(size int64) error {
		// A server answers a range that runs past the end with what there is
		// (its Size is then short): the object is shorter than its reference.
		if size != n {
			return fmt.Errorf("%w: %q: asked for %d bytes at %d, got %d", ErrOutOfRange, key, n, off, size)
		}
		return nil
	})
}

// get is GetMax's and GetRange's request for the whole object (n 0) or
// bytes [off, off+n), appended to dst, retried: check sees the size the
// server announces before any of the body is read, and no more than that
// size is ever read. The embedded endpoint of this process is read without
// the protocol (local).
func (c *Client) get(ctx context.Context, dst []byte, op, key string, off, n int64, check func(size int64) error) ([]byte, error) {
	if c.local != nil && c.local.open() {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("store: %s %q: %w", op, key, err)
		}
		return c.local.get(dst, c.cfg.Bucket, op, key, off, n, check)
	}
	var opts minio.GetObjectOptions
	if n > 0 {
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, err
		}
	}
	var data []byte
	err := c.retry(ctx, func(ctx context.Context) error {
		// An attempt that receives nothing for StallTimeout is cut short:
		// a connection to a server that went away without a reset (a
		// stopped node of a cluster) would stall the read until TCP gives
		// up, minutes later; cut, the connection is dropped and the retry
		// dials anew.
		actx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		stalled := fmt.Errorf("%w: nothing received for %s (store stall timeout)", ErrUnavailable, c.cfg.StallTimeout)
		timer := time.AfterFunc(c.cfg.StallTimeout, func() { cancel(stalled) })
		defer timer.Stop()
		var err error
		data, err = c.getOnce(actx, dst, key, opts, check, func() { timer.Reset(c.cfg.StallTimeout) })
		if err != nil && ctx.Err() == nil && context.Cause(actx) == stalled {
			return stalled // not err, which wraps context.Canceled: not retried
		}
		return err
	})
	if err != nil {
		return nil, s3Error(op, key, err)
	}
	return data, nil
}

// getOnce calls progress whenever bytes arrive. It is one plain GET
// (minio.Core): minio-go's *Object reader serves reads from a goroutine of
// its own, and a Read can wait on it for ever (seen in the HA compose:
// decode's Read waited minutes on that goroutine's channel, also after the
// stall timeout had cancelled its context); the body of a plain request
// fails when ctx ends.
func (c *Client) getOnce(ctx context.Context, dst []byte, key string, opts minio.GetObjectOptions, check func(size int64) error, progress func()) ([]byte, error) {
	// The response's headers arrive first: the size is known before any of
	// the body is read.
	obj, info, _, err := minio.Core{Client: c.mc}.GetObject(ctx, c.cfg.Bucket, key, opts)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	progress()
	if err := check(info.Size); err != nil {
		return nil, err
	}
	// ReadFull reads exactly the announced size, never more.
	data := grow(dst, info.Size)
	if _, err := io.ReadFull(progressReader{obj, progress}, data[len(dst):]); err != nil {
		return nil, err
	}
	return data, nil
}

// grow extends dst by n bytes, reusing its capacity.
func grow(dst []byte, n int64) []byte {
	return slices.Grow(dst, int(n))[:len(dst)+int(n)]
}

// progressReader calls progress after each read that returned bytes.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}

// Stat returns the object's size and metadata, or ErrNotFound.
func (c *Client) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidKey(key); err != nil {
		return ObjectInfo{}, err
	}
	var info minio.ObjectInfo
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		info, err = c.mc.StatObject(ctx, c.cfg.Bucket, key, minio.StatObjectOptions{})
		return err
	})
	if err != nil {
		return ObjectInfo{}, s3Error("stat", key, err)
	}
	return toInfo(info), nil
}

// Exists reports whether key exists.
func (c *Client) Exists(ctx context.Context, key string) (bool, error) {
	_, err := c.Stat(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put stores data under key as one complete object in a single PutObject
// request: readers never see a partial object.
func (c *Client) Put(ctx context.Context, key string, data []byte, opts PutOptions) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	meta := make(map[string]string, len(opts.Metadata))
	for k, v := range opts.Metadata {
		meta[strings.ToLower(k)] = v
	}
	err := c.retry(ctx, func(ctx context.Context) error {
		_, err := c.mc.PutObject(ctx, c.cfg.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
			ContentType:      opts.ContentType,
			UserMetadata:     meta,
			DisableMultipart: true,
		})
		return err
	})
	if err != nil {
		return s3Error("put", key, err)
	}
	return nil
}

// List returns every object whose key starts with prefix, in key order
// (see Walk). It is meant for tools: listing is slow on large buckets, so
// training reads a manifest instead.
func (c *Client) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	err := c.Walk(ctx, prefix, func(o ObjectInfo) error {
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Walk calls fn for every object whose key starts with prefix, in key
// order, with its key, size, ETag and last-modified time (not its user
// metadata: a listing does not carry it), one page of the listing at a
// time, so memory does not grow with the bucket. A transient failure is
// retried like every call, resuming after the last key passed to fn: fn
// sees each key once. It stops at the first error of fn, which it returns
// unwrapped. fn is called on the caller's goroutine.
func (c *Client) Walk(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var (
		after string // the last key passed to fn
		fnErr error
	)
	err := c.retry(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops minio-go's listing goroutine when fn fails
		opts := minio.ListObjectsOptions{Prefix: prefix, Recursive: true, StartAfter: after, MaxKeys: c.listPage}
		for obj := range c.mc.ListObjects(ctx, c.cfg.Bucket, opts) {
			if obj.Err != nil {
				return obj.Err
			}
			if after != "" && obj.Key <= after {
				continue // a server that ignores StartAfter
			}
			if fnErr = fn(toInfo(obj)); fnErr != nil {
				return nil
			}
			after = obj.Key
		}
		return ctx.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return s3Error("list", prefix, err)
	}
	return nil
}

func toInfo(o minio.ObjectInfo) ObjectInfo {
	meta := make(map[string]string, len(o.UserMetadata))
	for k, v := range o.UserMetadata {
		meta[strings.ToLower(k)] = v
	}
	// Servers differ on whether UserMetadata is filled on Stat; the raw
	// headers always carry it.
	for k, vv := range o.Metadata {
		lk := strings.ToLower(k)
		if rest, ok := strings.CutPrefix(lk, "x-amz-meta-"); ok && len(vv) > 0 {
			meta[rest] = vv[0]
		}
	}
	return ObjectInfo{
		Key:          o.Key,
		Size:         o.Size,
		ETag:         o.ETag,
		ContentType:  o.ContentType,
		LastModified: o.LastModified,
		Metadata:     meta,
	}
}

// retry calls f until it succeeds, fails with a non-transient error, ctx
// ends, or Config.RetryFor has passed since the first attempt.
func (c *Client) retry(ctx context.Context, f func(context.Context) error) error {
	giveUp := time.Now().Add(c.cfg.RetryFor)
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil || !transient(err) || c.cfg.RetryFor < 0 {
			return err
		}
		if time.Now().Add(backoff).After(giveUp) {
			return fmt.Errorf("gave up after %d attempts in %s: %w", attempt, c.cfg.RetryFor, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w after %d attempts: %w", ctx.Err(), attempt, err)
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}
