#!/bin/sh
# make bench-train: Go trainer vs PyTorch on identical SupCon steps.
# BENCH_STEPS=N sets the timed steps of every case; flags pass through
# (-case demo,resnet18 -blas-threads 2 ...).
cd "$(dirname "$0")/../.." || exit 1
exec go run ./bench/train "$@"
