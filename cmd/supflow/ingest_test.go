package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMNISTModuleVersion: the module ingest looks up for MNIST is the one
// go.mod requires, so `go mod download` finds it in the cache.
func TestMNISTModuleVersion(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	path, version, _ := strings.Cut(mnistModule, "@")
	if !strings.Contains(string(b), "\t"+path+" "+version+"\n") {
		t.Errorf("go.mod does not require %s %s: update mnistModule", path, version)
	}
}

// TestMNISTDirModuleCache finds the idx files through the go tool from
// outside the repository.
func TestMNISTDirModuleCache(t *testing.T) {
	t.Chdir(t.TempDir())
	dir, err := mnistDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{mnistFile, "t10k-labels-idx1-ubyte.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestMNISTDirNoGo: without the go tool and a bundled copy, the error is a
// usage error that says what to set.
func TestMNISTDirNoGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := mnistDir()
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "set dataset.path") || !strings.Contains(err.Error(), "SUPFLOW_DATASET_PATH") {
		t.Errorf("err = %v, want a usage error naming dataset.path", err)
	}
}
