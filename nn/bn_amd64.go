package nn

import (
	"os"

	"golang.org/x/sys/cpu"
)

// The AVX-512 versions of batch norm's float32 plane loops (bn_amd64.s);
// each matches the Go function its bnKernels field names.

//go:noescape
func moments32(x []float32, hw int, p []bnChannel)

//go:noescape
func centredDot32(x, dy []float32, hw int, relu bool, p []bnChannel)

//go:noescape
func normalize32(y, x []float32, hw int, relu bool, p []bnChannel)

//go:noescape
func gradX32(dx, x, dy []float32, hw int, relu bool, p []bnChannel)

// bnVec32 are batch norm's float32 loops in assembly where the CPU runs
// them. SUPFLOW_SIMD=off keeps the Go loops (for comparisons).
var bnVec32 = func() *bnKernels {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasBMI2 && os.Getenv("SUPFLOW_SIMD") != "off" {
		return &bnKernels{moments: moments32, centredDot: centredDot32, normalize: normalize32, gradX: gradX32}
	}
	return nil
}()
