// Package cputime reads this process's CPU time, for the benchmarks that
// report CPU per sample or per request: every goroutine's, an embedded
// server's included, which wall time on a busy machine does not give.
package cputime
