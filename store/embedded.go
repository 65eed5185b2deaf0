package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Embedded is an in-process S3-compatible endpoint on 127.0.0.1 with a
// random port and random credentials, for `supflow run` without an external
// MinIO. Clients reach it through the same minio-go and HTTP path as a real
// server, the process's own over in-memory pipes (Config returns the
// settings; their GETs read the backend directly, local), others over the
// socket (Endpoint). Requests must carry a valid AWS signature V4 made with
// its credentials. Close stops it; it is safe for concurrent use.
type Embedded struct {
	endpoint  string
	accessKey string
	secretKey string
	srv       *http.Server
	pipes     *pipeListener
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// StartEmbedded starts the endpoint. With dir empty the objects live in
// memory; otherwise they are files under dir (created if missing), kept
// across restarts. ctx bounds only the start.
func StartEmbedded(ctx context.Context, dir string) (*Embedded, error) {
	var backend gofakes3.Backend
	if dir == "" {
		backend = s3mem.New()
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: embedded data dir: %w", err)
		}
		b, err := newFileBackend(dir)
		if err != nil {
			return nil, fmt.Errorf("store: embedded backend in %s: %w", dir, err)
		}
		backend = b
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("store: embedded listen: %w", err)
	}
	e := &Embedded{
		endpoint:  ln.Addr().String(),
		accessKey: randomToken(10),
		secretKey: randomToken(20),
		pipes:     newPipeListener(),
		done:      make(chan struct{}),
	}
	e.pipes.local = &local{objects: backend, accessKey: e.accessKey, secretKey: e.secretKey, closed: e.pipes.closed}
	faker := gofakes3.New(backend, gofakes3.WithAutoBucket(false), gofakes3.WithLogger(gofakes3.DiscardLog()))
	e.srv = &http.Server{
		Handler:           requireSigV4(e.accessKey, e.secretKey, sizeChunkedPut(faker.Server())),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	var served sync.WaitGroup
	served.Go(func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.closeErr = fmt.Errorf("store: embedded serve: %w", err)
		}
	})
	served.Go(func() { e.srv.Serve(e.pipes) }) // ErrServerClosed once Close shuts the server down
	go func() {
		served.Wait()
		close(e.done)
	}()
	return e, nil
}

// Endpoint returns host:port (plain HTTP).
func (e *Embedded) Endpoint() string { return e.endpoint }

// Credentials returns the access and secret key requests must be signed with.
func (e *Embedded) Credentials() (accessKey, secretKey string) { return e.accessKey, e.secretKey }

// Config returns a client Config for bucket on this endpoint, reached in
// process (Config.Dialer): clients in other processes use Endpoint.
func (e *Embedded) Config(bucket string) Config {
	return Config{Endpoint: e.endpoint, Bucket: bucket, AccessKey: e.accessKey, SecretKey: e.secretKey, Dialer: e.pipes}
}

// Close stops the endpoint and waits for its server goroutines. Idempotent.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			e.srv.Close()
		}
		// Shutdown closes the listeners Serve had begun with; a Close right
		// after the start may come first, and no dial must wait on it.
		e.pipes.Close()
		<-e.done
	})
	return e.closeErr
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b)
}

// maxChunkedPut bounds the PUT bodies of unknown length the embedded
// endpoint buffers in memory.
const maxChunkedPut = 256 << 20

// sizeChunkedPut gives PUT bodies of unknown length a Content-Length:
// gofakes3 refuses a PUT without one, and Go's client sends an empty body
// chunked.
func sizeChunkedPut(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.ContentLength < 0 {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxChunkedPut+1))
			if err != nil || len(body) > maxChunkedPut {
				http.Error(w, "chunked PUT body unreadable or too large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
		next.ServeHTTP(w, r)
	})
}
