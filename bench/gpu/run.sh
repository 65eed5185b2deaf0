#!/usr/bin/env bash
# GPU checks of issue 13 in one go, on the GPU machine, from the repository
# root; every result line starts with "GPU". The Go side is a cgo binary
# built on the development machine (CGO_ENABLED=1 go build -o bench/gpu/gpu
# ./bench/gpu; it links only libc and libdl) or here when go is installed.
#   SUPFLOW_PJRT_PLUGIN  the CUDA PJRT plugin (default: jax-cuda13-pjrt's)
#   PYTHON               python with torch and jax (default python3)
#   STEPS                timed steps per shape (default 20)
#   SPEED                shapes arch:stem:size:batch,... (default below)
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
STEPS=${STEPS:-20}
SPEED=${SPEED:-resnet50:imagenet:224:128,resnet50:imagenet:224:256,resnet50:cifar:32:512}
BIN=${SUPFLOW_GPU_BIN:-bench/gpu/gpu}
if [ ! -x "$BIN" ]; then
	if command -v go >/dev/null; then
		CGO_ENABLED=1 go build -o "$BIN" ./bench/gpu || exit 1
	else
		echo "GPU FAIL: no $BIN and no go to build it"
		exit 1
	fi
fi
PLUGIN=${SUPFLOW_PJRT_PLUGIN:-$($PY -c 'import os, jax_plugins.xla_cuda13 as m; print(os.path.join(os.path.dirname(m.__file__), "xla_cuda_plugin.so"))')}
# go-xla's CUDA checks point XLA at its author's CUDA folder: off, and ours.
export GOPJRT_CUDA_CHECKS=0
NVCC=$($PY -c 'import os, nvidia.cuda_nvcc as m; print(os.path.dirname(m.__file__))' 2>/dev/null || true)
[ -n "$NVCC" ] && export XLA_FLAGS="--xla_gpu_cuda_data_dir=$NVCC ${XLA_FLAGS:-}"
echo "GPU $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
echo "GPU plugin $PLUGIN XLA_FLAGS=${XLA_FLAGS:-}"
$PY -c 'import jax, jaxlib; print("GPU jax", jax.__version__, "jaxlib", jaxlib.__version__)' 2>/dev/null

# 1-2: plugin, devices, a first program, fixture parity in float32 (TF32 off).
NVIDIA_TF32_OVERRIDE=0 timeout 90 "$BIN" -plugin "$PLUGIN" -speed "" || echo "GPU FAIL: parity (exit $?)"

# 3: speed, XLA then PyTorch, with the peak memory nvidia-smi sees.
mem=$(mktemp)
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$mem" &
smi=$!
timeout 180 "$BIN" -plugin "$PLUGIN" -parity=false -preallocate=false -speed "$SPEED" -steps "$STEPS" || echo "GPU FAIL: xla speed (exit $?)"
kill "$smi"
echo "GPU xla peak memory used (nvidia-smi, preallocation off): $(sort -n "$mem" | tail -1) MiB"
rm -f "$mem"
timeout 180 "$PY" bench/gpu/torch_supcon.py "$SPEED" "$STEPS" 60 || echo "GPU FAIL: torch (exit $?)"

# 4: end to end needs the XLA trainer behind `supflow run` (train.backend:
# xla), which is not wired yet.
echo "GPU e2e: pending (train.backend xla not implemented)"
