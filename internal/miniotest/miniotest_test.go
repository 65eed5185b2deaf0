package miniotest

import (
	"errors"
	"net/http"
	"testing"
)

func live(t *testing.T, s *Server) bool {
	t.Helper()
	resp, err := http.Get("http://" + s.Endpoint() + "/minio/health/live")
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
