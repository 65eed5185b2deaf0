#!/bin/sh
# make bench-data: supflow's decode and augment against PIL + torchvision on
# the same files, one core each, then the pipeline over embedded JetStream.
# Knobs (environment):
#   BENCH_IMAGES=N    photographs to use (default all, ~154; 20 for a quick run)
#   BENCH_SMALL=N     32x32 and 28x28 images to generate (default 20000: at 2000 a
#                     pipeline row lasted a fraction of a second, and one GC more or less moved it)
#   BENCH_MIN_TIME=D  least time per case and side (default 2s)
#   BENCH_ROUNDS=N    rounds per case, best kept per side (default 3)
#   PYTHON=path       Python with PIL, torch, torchvision (default /usr/bin/python3)
#   BENCH_PHOTOS=glob JPEG photographs to cut the images from (default the Debian wallpapers)
#   BENCH_PIPELINE_ONLY=1  only the pipelines over the bus (no PIL/torchvision comparison)
#   BENCH_JPEGS=N     ImageNet-like JPEGs for the jpeg224 case (default 500, 0 skips it)
#   BENCH_JPEG_ONLY=1 only the jpeg224 case
#   BENCH_CASE=regexp only the pipeline rows whose name (PIPELINE case=) matches
#   BENCH_CPUPROFILE=prefix  a CPU profile of each pipeline row run: prefix.<n>.<row>.pprof
#   BENCH_S3=disk     the embedded S3 keeps objects in files, as `supflow run` does (default memory)
set -eu
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=1 go build -o "$bin/bench-data" ./bench/data
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"
"$bin/bench-data" -photos "${BENCH_PHOTOS:-/usr/share/wallpapers/*/contents/images/*.jpg}" \
	-pipeline-only="${BENCH_PIPELINE_ONLY:-false}" -jpegs "${BENCH_JPEGS:-500}" -jpeg-only="${BENCH_JPEG_ONLY:-false}" \
	-case "${BENCH_CASE:-}" -cpuprofile "${BENCH_CPUPROFILE:-}" -images "${BENCH_IMAGES:-0}" -small "${BENCH_SMALL:-20000}" -s3 "${BENCH_S3:-memory}" \
	-min-time "${BENCH_MIN_TIME:-2s}" -rounds "${BENCH_ROUNDS:-3}" -python "${PYTHON:-/usr/bin/python3}" -ref bench/data/pil_ref.py
