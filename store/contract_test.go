package store

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/supflow/supflow/internal/miniotest"
)

// backend starts an S3 endpoint and returns a Config for it (bucket not yet
// created) plus a function that fails the endpoint for a while.
type backend func(t *testing.T) Config

// startEmbedded starts an embedded endpoint, its objects in files under
// dir or in memory when dir is empty, closed when tb ends.
func startEmbedded(tb testing.TB, dir string) *Embedded {
	tb.Helper()
	e, err := StartEmbedded(tb.Context(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

func embeddedBackend(t *testing.T) Config { return startEmbedded(t, "").Config("contract") }

// embeddedDiskBackend keeps the objects in files, as `supflow run` does
// (fileBackend in front of gofakes3's afero backend).
func embeddedDiskBackend(t *testing.T) Config {
	return startEmbedded(t, t.TempDir()).Config("contract")
}

// embeddedSocketBackend reaches the embedded endpoint over its TCP socket,
// as other processes do, instead of in memory.
func embeddedSocketBackend(t *testing.T) Config {
	cfg := embeddedBackend(t)
	cfg.Dialer = nil
	return cfg
}

func minioBackend(t *testing.T) Config {
	t.Helper()
	s := miniotest.Start(t)
	ak, sk := s.Credentials()
	return Config{Endpoint: s.Endpoint(), Bucket: "contract", AccessKey: ak, SecretKey: sk}
}

func TestContractEmbedded(t *testing.T) { runContract(t, embeddedBackend) }

func TestContractEmbeddedSocket(t *testing.T) { runContract(t, embeddedSocketBackend) }

func TestContractEmbeddedDisk(t *testing.T) { runContract(t, embeddedDiskBackend) }

func TestIntegrationContractMinIO(t *testing.T) { runContract(t, minioBackend) }

// runContract is the one suite every endpoint must pass. The subtests share
// one endpoint and bucket; each uses its own keys.
func runContract(t *testing.T, start backend) {
	cfg := start(t)
	cfg.MaxObjectSize = 1 << 10
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.Check(ctx); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("Check before EnsureBucket = %v, want ErrNoSuchBucket", err)
	}
	if _, err := c.GetRange(ctx, "no/bucket", 0, 1, 1); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("GetRange before EnsureBucket = %v, want ErrNoSuchBucket", err)
	}
	for range 2 { // idempotent
		if err := c.EnsureBucket(ctx); err != nil {
			t.Fatalf("EnsureBucket: %v", err)
		}
	}
	if err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"put get stat", func(t *testing.T) {
			data := []byte("hello, supflow")
			err := c.Put(ctx, "rt/a.png", data, PutOptions{ContentType: "image/png", Metadata: map[string]string{"Sha256": "abc"}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(ctx, "rt/a.png")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get = %q, %v", got, err)
			}
			info, err := c.Stat(ctx, "rt/a.png")
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(data)) || info.Metadata["sha256"] != "abc" || info.ContentType != "image/png" {
				t.Fatalf("Stat = %+v", info)
			}
		}},
		{"overwrite", func(t *testing.T) {
			for _, v := range []string{"one", "two", "three"} { // read between: what a server caches must follow
				if err := c.Put(ctx, "ow/x", []byte(v), PutOptions{Metadata: map[string]string{"v": v}}); err != nil {
					t.Fatal(err)
				}
				if got, err := c.Get(ctx, "ow/x"); err != nil || string(got) != v {
					t.Fatalf("Get = %q, %v, want %q", got, err, v)
				}
				if info, err := c.Stat(ctx, "ow/x"); err != nil || info.Metadata["v"] != v || info.Size != int64(len(v)) {
					t.Fatalf("Stat = %+v, %v, want %q", info, err, v)
				}
			}
		}},
		{"empty object", func(t *testing.T) {
			if err := c.Put(ctx, "empty", nil, PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, err := c.Get(ctx, "empty"); err != nil || len(got) != 0 {
				t.Fatalf("Get = %q, %v", got, err)
			}
		}},
		{"missing key", func(t *testing.T) {
			if _, err := c.Get(ctx, "no/such/key"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get = %v, want ErrNotFound", err)
			}
			if _, err := c.Stat(ctx, "no/such/key"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat = %v, want ErrNotFound", err)
			}
			if ok, err := c.Exists(ctx, "no/such/key"); ok || err != nil {
				t.Errorf("Exists = %t, %v", ok, err)
			}
		}},
		{"max size refusal", func(t *testing.T) {
			big := bytes.Repeat([]byte{7}, int(cfg.MaxObjectSize)+1)
			if err := c.Put(ctx, "big", big, PutOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err := c.Get(ctx, "big")
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Get = %v, want ErrTooLarge", err)
			}
			if err := c.Put(ctx, "limit", big[1:], PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if got, err := c.Get(ctx, "limit"); err != nil || len(got) != int(cfg.MaxObjectSize) {
				t.Fatalf("Get at the limit = %d bytes, %v", len(got), err)
			}
		}},
		{"per-call size limit", func(t *testing.T) {
			data := bytes.Repeat([]byte{3}, 100)
			if err := c.Put(ctx, "max/100", data, PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, c2 := range []struct {
				max int64
				ok  bool
			}{{100, true}, {99, false}, {0, false}, {-1, false}, {cfg.MaxObjectSize + 1, true}} {
				got, err := c.GetMax(ctx, "max/100", c2.max)
				if c2.ok && (err != nil || !bytes.Equal(got, data)) || !c2.ok && !errors.Is(err, ErrTooLarge) {
					t.Errorf("GetMax(%d) = %d bytes, %v", c2.max, len(got), err)
				}
			}
			// The lower of the two limits applies.
			big := bytes.Repeat([]byte{7}, int(cfg.MaxObjectSize)+1)
			if err := c.Put(ctx, "max/big", big, PutOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetMax(ctx, "max/big", 1<<30); !errors.Is(err, ErrTooLarge) {
				t.Errorf("GetMax over the client's limit = %v, want ErrTooLarge", err)
			}
			if _, err := c.GetMax(ctx, "max/none", 10); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetMax of a missing key = %v, want ErrNotFound", err)
			}
		}},
		{"ranged get", func(t *testing.T) {
			data := []byte("0123456789")
			if err := c.Put(ctx, "range/10", data, PutOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				off, n, max int64
				want        error
			}{
				{0, 10, 10, nil}, {3, 4, 4, nil}, {9, 1, 100, nil},
				{3, 4, 3, ErrTooLarge}, {0, cfg.MaxObjectSize + 1, 1 << 30, ErrTooLarge},
				{8, 4, 100, ErrOutOfRange}, {10, 1, 100, ErrOutOfRange}, {50, 5, 100, ErrOutOfRange},
				{-1, 2, 100, ErrOutOfRange}, {0, 0, 100, ErrOutOfRange},
			} {
				got, err := c.GetRange(ctx, "range/10", r.off, r.n, r.max)
				if r.want == nil && (err != nil || !bytes.Equal(got, data[r.off:r.off+r.n])) || r.want != nil && !errors.Is(err, r.want) {
					t.Errorf("GetRange(%d, %d, max %d) = %q, %v; want %v", r.off, r.n, r.max, got, err, r.want)
				}
			}
			if _, err := c.GetRange(ctx, "range/none", 0, 1, 10); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetRange of a missing key = %v, want ErrNotFound", err)
			}
			// AppendRange keeps dst's bytes and reuses its room.
			dst := append(make([]byte, 0, 64), "ab"...)
			got, err := c.AppendRange(ctx, dst, "range/10", 3, 4, 4)
			if err != nil || string(got) != "ab3456" || &got[0] != &dst[0] {
				t.Errorf("AppendRange(%q, 3, 4) = %q, %v; want \"ab3456\" in dst's array", dst, got, err)
			}
		}},
		{"list", func(t *testing.T) {
			want := []string{"ls/a/1", "ls/a/2", "ls/b/3"}
			for _, k := range append([]string{"lsx"}, want...) {
				if err := c.Put(ctx, k, []byte(k), PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := c.List(ctx, "ls/")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.Key)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("List = %v, want %v", got, want)
			}
			for _, o := range objs {
				if o.Size != int64(len(o.Key)) || o.ETag == "" || strings.Contains(o.ETag, `"`) {
					t.Errorf("List: %s has size %d, ETag %q; want %d and an unquoted ETag", o.Key, o.Size, o.ETag, len(o.Key))
				}
			}
			// A new content gives a new ETag: what a listing fingerprint
			// (dataset.Index) relies on.
			if err := c.Put(ctx, "ls/a/1", []byte("ls/a/X"), PutOptions{}); err != nil {
				t.Fatal(err)
			}
			again, err := c.List(ctx, "ls/a/1")
			if err != nil || len(again) != 1 || again[0].ETag == objs[0].ETag {
				t.Errorf("List after a rewrite = %+v, %v; want one object with an ETag other than %q", again, err, objs[0].ETag)
			}
			// Walk stops at fn's error and returns it as it is.
			stop := errors.New("stop")
			var seen []string
			err = c.Walk(ctx, "ls/", func(o ObjectInfo) error {
				seen = append(seen, o.Key)
				if len(seen) == 2 {
					return stop
				}
				return nil
			})
			if err != stop || !slices.Equal(seen, want[:2]) {
				t.Errorf("Walk stopped by fn = %v after %v; want %v after %v", err, seen, stop, want[:2])
			}
		}},
		{"invalid keys", func(t *testing.T) {
			for _, k := range []string{"", "/abs", "bad\xff", strings.Repeat("k", maxKeyLen+1), "a/../b", "a//b", `a\b`} {
				if err := c.Put(ctx, k, nil, PutOptions{}); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
				}
			}
		}},
		{"wrong credentials", func(t *testing.T) {
			bad := cfg
			bad.SecretKey = "wrong-secret-" + cfg.SecretKey
			bc, err := New(bad)
			if err != nil {
				t.Fatal(err)
			}
			errs := []error{bc.Check(ctx), bc.Put(ctx, "x", []byte("x"), PutOptions{})}
			_, err = bc.Get(ctx, "rt/a.png")
			errs = append(errs, err)
			for _, err := range errs {
				if !errors.Is(err, ErrAccessDenied) {
					t.Errorf("err = %v, want ErrAccessDenied", err)
				}
				for _, secret := range []string{bad.SecretKey, cfg.SecretKey, cfg.AccessKey} {
					if err != nil && strings.Contains(fmt.Sprintf("%v %+v", err, err), secret) {
						t.Errorf("error %q contains a credential", err)
					}
				}
			}
		}},
		{"unsigned request refused", func(t *testing.T) {
			resp, err := plainClient(t, cfg).Get(c.endpoint + "/" + cfg.Bucket + "/rt/a.png")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestWrongEndpointFailsFast(t *testing.T) {
	e, err := StartEmbedded(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.Config("data")
	e.Close() // nothing listens on the port any more
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.EnsureBucket(t.Context())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("EnsureBucket = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > DefaultCheckTimeout {
		t.Fatalf("EnsureBucket took %s", d)
	}
	if !strings.Contains(err.Error(), cfg.Endpoint) {
		t.Fatalf("error %q does not name the endpoint", err)
	}
}

func TestEmbeddedPersistsInDir(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	var key = "p/q.bin"
	for i := range 2 {
		e, err := StartEmbedded(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(e.Config("persist"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.EnsureBucket(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := c.Put(ctx, key, []byte("kept"), PutOptions{Metadata: map[string]string{"sha256": "f00"}}); err != nil {
				t.Fatal(err)
			}
		} else {
			got, err := c.Get(ctx, key)
			if err != nil || string(got) != "kept" {
				t.Fatalf("after restart Get = %q, %v", got, err)
			}
			info, err := c.Stat(ctx, key)
			if err != nil || info.Metadata["sha256"] != "f00" {
				t.Fatalf("after restart Stat = %+v, %v", info, err)
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		e.Close() // idempotent
	}
}

// plainClient is an HTTP client without S3 credentials that trusts cfg's CA.
func plainClient(t *testing.T, cfg Config) *http.Client {
	t.Helper()
	if cfg.CAFile == "" {
		return http.DefaultClient
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
