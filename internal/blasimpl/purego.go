//go:build !cgo || noopenblas

package blasimpl

const name = "gonum"

// SetThreads does nothing: gonum's BLAS runs on the calling goroutine.
func SetThreads(int) {}

// Threads reports 1: gonum's BLAS runs on the calling goroutine.
func Threads() int { return 1 }
