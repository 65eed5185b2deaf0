// Package nn owns the neural-network operators of supflow's hot path,
// written as gorgonia ops: 2-D convolution, batch normalisation, ReLU,
// residual addition, pooling, linear layers and row L2 normalisation, each
// with its own backward ops so that gorgonia's symbolic differentiation
// (gorgonia.Grad) and tape machine can drive them.
//
// Every op allocates its output once and returns the same tensor on every
// run of the graph; convolution workspaces are borrowed from a shared free
// list for the duration of a call. Memory therefore stays flat across
// training steps. A value returned by a run is only valid until the next
// run of the same graph; copy it to keep it. A graph built from these ops
// must be run by one machine at a time (different graphs may run
// concurrently, as long as they share no BNState). Errors from a machine's
// RunAll pass through RunError to be matched with errors.Is.
//
// Tensors are NCHW (PyTorch layout), float64 or float32. The package knows
// nothing about models, transport or storage; it imports only gorgonia and
// gonum.
//
// Its float32 fast paths (AVX-512 assembly loops and GEMM kernel) are on
// wherever the CPU has them; SetSIMD and SetOwnSgemm turn them off, at
// startup before any op runs. nn never reads the environment: cmd/supflow
// maps SUPFLOW_SIMD=off and SUPFLOW_SGEMM=blas onto them.
package nn
