package engine

// GCPercent is the garbage-collection target (debug.SetGCPercent) a
// training process should run with, in place of GOGC=100. A trainer's heap
// is almost all long-lived, pointer-free tensors (cheap to mark) plus a
// little garbage per step, so with the default the heap, and RSS, drift up
// to twice the live size between collections (measured: 222 MiB live,
// 390 MiB after 200 demo steps); at 25 the extra collections cost next to
// nothing. The setting is process-wide, so the trainer does not apply it
// itself: main does (cmd/supflow, unless GOGC is set).
const GCPercent = 25
