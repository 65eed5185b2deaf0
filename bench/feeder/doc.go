// Package feederbench is `make bench-feeder`: the feeder at ImageNet scale.
// BenchmarkFeederImageNet (feeder_test.go) writes a synthetic manifest of
// ImageNet-1k's 1,281,167 training images into a real MinIO server, runs
// `supflow feed` against it and a real NATS server, as a deployment does,
// and prints its RSS and time to the first decode task, then the load,
// check and shuffle costs of the same manifest measured in-process. See
// docs/benchmarks.md ("Feeder at ImageNet scale").
package feederbench
