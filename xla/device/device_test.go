//go:build cgo

package device

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenMissingPlugin: a missing plugin is ErrPlugin naming the path and
// the cause.
func TestOpenMissingPlugin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pjrt_c_api_cuda_plugin.so")
	_, err := Open(path, nil)
	if !errors.Is(err, ErrPlugin) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("Open(%s) = %v, want ErrPlugin naming the path and the cause", path, err)
	}
}

// TestOpenNotAPlugin: a file that is not a shared library is ErrPlugin
// naming the path.
func TestOpenNotAPlugin(t *testing.T) {
	_, err := Open("device.go", nil)
	if !errors.Is(err, ErrPlugin) || !strings.Contains(err.Error(), "device.go") {
		t.Fatalf("Open(device.go) = %v, want ErrPlugin naming the path", err)
	}
}

// TestOpenDirect: with SUPFLOW_PJRT_DIRECT=1 go-xla loads the plugin itself
// (its own error for a file that is not a plugin), still ErrPlugin naming
// the path.
func TestOpenDirect(t *testing.T) {
	t.Setenv(EnvDirect, "1")
	_, err := Open("device.go", nil)
	if !errors.Is(err, ErrPlugin) || !strings.Contains(err.Error(), "device.go") || !strings.Contains(err.Error(), "failed to load PJRT plugin") {
		t.Fatalf("Open(device.go) with %s=1 = %v, want go-xla's load error as ErrPlugin", EnvDirect, err)
	}
}
