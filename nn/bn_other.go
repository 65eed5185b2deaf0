//go:build !amd64

package nn

// bnVec32: no vector loops for this architecture.
var bnVec32 *bnKernels
