//go:build !amd64

package nn

// cpuVecLoops32: no vector loops for this architecture.
var cpuVecLoops32 *vecLoops
