// Package torchref runs the repository's PyTorch reference scripts from
// tests: supcon_torch.py (SupContrast's SupConResNet and SupCon loss) and
// the scripts that import it, with Debian's python3-torch.
package torchref

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Run runs the script with args on the first interpreter that can import
// torch: $SUPFLOW_TORCH_PYTHON alone when it is set, else Debian's
// /usr/bin/python3, then python3 on PATH, and returns its stdout. Where
// none can, the test is skipped, or fails when CI=true (.ci/run installs
// python3-torch, so CI always runs it). A script that fails fails the
// test with its stderr.
func Run(t testing.TB, script string, args ...string) []byte {
	t.Helper()
	pythons := []string{"/usr/bin/python3", "python3"}
	if py := os.Getenv("SUPFLOW_TORCH_PYTHON"); py != "" {
		pythons = []string{py}
	}
	for _, py := range pythons {
		out, err := exec.Command(py, append([]string{script}, args...)...).Output()
		if err == nil {
			return out
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(string(ee.Stderr), "No module named 'torch'") {
			continue
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			continue
		}
		var stderr []byte
		if ee != nil {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s failed: %v\n%s", py, script, err, stderr)
	}
	const missing = "no python3 with torch (Debian: apt-get install python3-torch)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI=true forbids skipping a PyTorch compatibility test", missing)
	}
	t.Skipf("%s; skipping (CI is not set)", missing)
	return nil
}
