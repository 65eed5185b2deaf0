// Package testdata locates the shared reference fixtures (../shared/testdata
// beside the repository root) for tests.
package testdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the absolute path of the fixture folder name (e.g. "supcon").
// The test fails when the folder is missing: the fixtures are part of the
// contract, so their absence is never a reason to skip.
func Dir(t testing.TB, name string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testdata: %v", err)
	}
	dir := filepath.Join(root, "..", "shared", "testdata", name)
	if env := os.Getenv("SUPFLOW_TESTDATA"); env != "" {
		dir = filepath.Join(env, name)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("testdata: fixture folder %s: %v (set SUPFLOW_TESTDATA to the folder holding supcon/, resnet/, augment/)", name, err)
	}
	return dir
}

// repoRoot walks up from the working directory to the folder holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
