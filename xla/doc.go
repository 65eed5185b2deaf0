// Package xla lowers a model's training step and eval-mode encoding to
// StableHLO programs (MLIR text built with go-xla's pure-Go stablehlo
// package) for an XLA backend to compile.
//
// The network comes from model.Arch, so the model is defined once; every
// op's backward is written out here by hand (a small reverse-mode tape over
// StableHLO values), as nn writes it for the CPU engine, and the loss,
// optimizer and batch-norm updates follow loss, optim and nn to the
// formula. internal/hloeval executes the emitted text on the CPU, which is
// how the tests prove a program against the PyTorch fixtures.
//
// Runner is how a program runs: compiled, fed device buffers (the state
// donated from step to step) and read back, on one device or, a
// data-parallel step (StepConfig.Replicas), one replica per device. xla/device implements it on a
// PJRT plugin, internal/hlorunner on the evaluator; xla/trainer drives one
// behind the engine's API.
package xla
