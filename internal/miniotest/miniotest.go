// Package miniotest runs a real MinIO server binary for integration tests
// (TestIntegration*), over HTTP or HTTPS. It finds the binary at
// $SUPFLOW_MINIO_BIN or as `minio` on PATH; without one, tests skip locally
// and fail when CI=true, because CI must never skip an integration test. It
// imports only the standard library and internal/tlstest and is for tests
// only.
package miniotest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/supflow/supflow/internal/tlstest"
)

// EnvBinary names the variable that points at the minio binary.
const EnvBinary = "SUPFLOW_MINIO_BIN"

// startTimeout bounds how long a start waits for /minio/health/live.
const startTimeout = 60 * time.Second

// ErrNoBinary says no minio binary was found.
var ErrNoBinary = errors.New("miniotest: no minio binary (set " + EnvBinary + " or put minio on PATH)")

// Binary returns the path of the minio binary to use.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrNoBinary, EnvBinary, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("minio")
	if err != nil {
		return "", ErrNoBinary
	}
	return p, nil
}

// Server is one MinIO server process on 127.0.0.1 with its data in a test
// temp dir. Stop and Start may be called from the test goroutine to simulate
// an outage; the server keeps its address, data and credentials.
type Server struct {
	t         testing.TB
	bin       string
	dir       string // data
	logPath   string
	addr      string
	console   string
	accessKey string
	secretKey string
	certsDir  string       // with public.crt and private.key when serving HTTPS
	caFile    string       // the CA that signed public.crt
	client    *http.Client // for the health checks

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Start runs a fresh server and stops it in t.Cleanup. Without a binary it
// skips the test, or fails it when CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS is Start serving HTTPS, with a certificate for 127.0.0.1 signed
// by a CA made for the test (see CAFile).
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, secure bool) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; CI=true forbids skipping integration tests", err)
		}
		t.Skipf("%v; skipping (CI is not set)", err)
	}
	root := t.TempDir()
	s := &Server{
		t:         t,
		bin:       bin,
		dir:       filepath.Join(root, "data"),
		logPath:   filepath.Join(root, "minio.log"),
		addr:      freeAddr(t),
		console:   freeAddr(t),
		accessKey: "supflow" + token(4),
		secretKey: token(16),
		client:    http.DefaultClient,
	}
	if secure {
		// MinIO serves HTTPS when its certs dir holds public.crt and private.key.
		ca := tlstest.NewCA(t, "minio-ca")
		pair := ca.Issue(t, "minio", "127.0.0.1")
		s.certsDir, s.caFile = filepath.Join(root, "certs"), ca.CertFile
		if err := os.Mkdir(s.certsDir, 0o700); err != nil {
			t.Fatalf("miniotest: %v", err)
		}
		for name, b := range map[string][]byte{"public.crt": pair.CertPEM, "private.key": pair.KeyPEM} {
			if err := os.WriteFile(filepath.Join(s.certsDir, name), b, 0o600); err != nil {
				t.Fatalf("miniotest: %v", err)
			}
		}
		s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Pid returns the server's process id, 0 while it is stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Endpoint returns host:port (HTTPS for a server from StartTLS).
func (s *Server) Endpoint() string { return s.addr }

// CAFile returns the PEM file of the CA that signed the certificate of a
// server from StartTLS, "" for a plain HTTP one.
func (s *Server) CAFile() string { return s.caFile }

// URL returns the base URL, http:// or https://.
func (s *Server) URL() string {
	if s.certsDir != "" {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// Credentials returns the root user and password.
func (s *Server) Credentials() (accessKey, secretKey string) { return s.accessKey, s.secretKey }

// Start (re)starts the server on its address and data dir and waits until
// it is live. It fails the test if the server does not come up.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatalf("miniotest: log file: %v", err)
	}
	args := []string{"server", s.dir, "--address", s.addr, "--console-address", s.console, "--quiet"}
	if s.certsDir != "" {
		args = append(args, "--certs-dir", s.certsDir)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(withoutMinioVars(os.Environ()),
		"MINIO_ROOT_USER="+s.accessKey,
		"MINIO_ROOT_PASSWORD="+s.secretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("miniotest: start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() { // owner of the process: reaps it whenever it exits
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done, s.log = cmd, done, logf
	if err := waitLive(s.client, s.URL(), done); err != nil {
		s.stopLocked()
		s.t.Fatalf("miniotest: %v; server log:\n%s", err, s.logTail())
	}
}

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s) and waits
// for it to exit. Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
	s.cmd, s.done, s.log = nil, nil, nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitLive polls the cluster health endpoint until it answers 200, the
// process exits, or startTimeout passes. /minio/health/live answers before
// the server accepts S3 requests ("Server not initialized yet"); the cluster
// check waits for write quorum.
func waitLive(client *http.Client, base string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	url := base + "/minio/health/cluster"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("minio exited during start")
		case <-ctx.Done():
			return fmt.Errorf("minio not live at %s after %s", url, startTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// withoutMinioVars drops inherited MINIO_* settings that could change the
// server's behaviour.
func withoutMinioVars(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MINIO_") {
			out = append(out, kv)
		}
	}
	return out
}

func token(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
