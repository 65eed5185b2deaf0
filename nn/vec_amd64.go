package nn

import "golang.org/x/sys/cpu"

// The AVX-512 versions of float32 loops (vec_amd64.s); each matches the
// Go function its vecLoops field names.

//go:noescape
func moments32(x []float32, hw int, p []bnChannel)

//go:noescape
func centredDot32(x, dy []float32, hw int, relu bool, p []bnChannel)

//go:noescape
func normalize32(y, x []float32, hw int, relu bool, p []bnChannel)

//go:noescape
func gradX32(dx, x, dy []float32, hw int, relu bool, p []bnChannel)

//go:noescape
func addReLUAVX512(dst, a, b []float32)

//go:noescape
func reluGradAVX512(dst, x, dy []float32)

//go:noescape
func transpose16(dst *float32, ldd int, a, b *float32, lds int)

// cpuVecLoops32 are the float32 loops in assembly where the CPU runs them.
var cpuVecLoops32 = func() *vecLoops {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasBMI2 {
		return &vecLoops{moments: moments32, centredDot: centredDot32, normalize: normalize32, gradX: gradX32,
			addReLU: addReLUAVX512, reluGrad: reluGradAVX512, transpose16: transpose16}
	}
	return nil
}()
