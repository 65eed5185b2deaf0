package miniotest

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func live(t *testing.T, s *Server) bool {
	t.Helper()
	resp, err := s.client.Get(s.URL() + "/minio/health/live")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestIntegrationStopStart(t *testing.T) {
	s := Start(t)
	if !live(t, s) {
		t.Fatal("server not live after Start")
	}
	s.Stop()
	if live(t, s) {
		t.Fatal("server still live after Stop")
	}
	s.Stop() // idempotent
	s.Start()
	if !live(t, s) {
		t.Fatal("server not live after restart")
	}
}

func TestWithoutMinioVars(t *testing.T) {
	got := withoutMinioVars([]string{"PATH=/bin", "MINIO_ROOT_USER=x", "HOME=/root", "MINIO_REGION=y"})
	if len(got) != 2 || got[0] != "PATH=/bin" || got[1] != "HOME=/root" {
		t.Fatalf("withoutMinioVars = %v", got)
	}
}

func TestBinary(t *testing.T) {
	t.Setenv(EnvBinary, t.TempDir()+"/no-such-minio")
	if _, err := Binary(); !errors.Is(err, ErrNoBinary) {
		t.Fatalf("Binary with a wrong %s = %v, want ErrNoBinary", EnvBinary, err)
	}
	t.Setenv(EnvBinary, "")
	t.Setenv("PATH", t.TempDir())
	if _, err := Binary(); !errors.Is(err, ErrNoBinary) {
		t.Fatalf("Binary with an empty PATH = %v, want ErrNoBinary", err)
	}
}

func TestIntegrationTLS(t *testing.T) {
	s := StartTLS(t)
	if s.CAFile() == "" || !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("CAFile %q, URL %q", s.CAFile(), s.URL())
	}
	if _, err := http.Get(s.URL() + "/minio/health/live"); err == nil {
		t.Fatal("a client without the test CA trusted the server")
	}
	s.Stop()
	s.Start() // keeps serving HTTPS
	if !live(t, s) {
		t.Fatal("server not live over HTTPS after restart")
	}
}
