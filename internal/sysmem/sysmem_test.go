package sysmem

import (
	"runtime"
	"testing"
)

func TestTotal(t *testing.T) {
	n := Total()
	if runtime.GOOS == "linux" && n < 64<<20 {
		t.Fatalf("Total = %d bytes on Linux, want the machine's memory", n)
	}
	t.Logf("%d MiB", n>>20)
}
