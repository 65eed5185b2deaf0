//go:build !amd64

package nn

// vecLoops32: no vector loops for this architecture.
var vecLoops32 *vecLoops
