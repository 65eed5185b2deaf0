#!/usr/bin/env bash
# GPU checks of issue 13 in one go, on the GPU machine, from the repository
# root; every result line starts with "GPU". The Go side is two cgo
# binaries built on the development machine and copied over (or built here
# when go is installed), each linking only libc (libdl is in glibc):
#   CGO_ENABLED=1 go build -trimpath -ldflags=-s -o bench/gpu/gpu ./bench/gpu
#   CGO_ENABLED=1 go build -trimpath -ldflags=-s -tags noopenblas,nolibjpeg -o bench/gpu/supflow ./cmd/supflow
#   SUPFLOW_BIN          that supflow (default bench/gpu/supflow)
#   E2E_WORKERS, E2E_PER_CLASS, E2E_EPOCHS, E2E_TIMEOUT  step 4's knobs
#   SUPFLOW_PJRT_PLUGIN  the CUDA PJRT plugin (default: jax-cuda13-pjrt's)
#   PYTHON               python with torch and jax (default python3)
#   STEPS                timed steps per shape (default 20)
#   SUPFLOW_PJRT_DIRECT=1  load the plugin as go-xla does, without xla/device's
#                        widened function table (docs/operations.md, "The GPU trainer")
#   SPEED                shapes arch:stem:size:batch,... (default below)
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
STEPS=${STEPS:-20}
SPEED=${SPEED:-resnet50:imagenet:224:128,resnet50:imagenet:224:256,resnet50:cifar:32:512}
BIN=${SUPFLOW_GPU_BIN:-bench/gpu/gpu}
if [ ! -x "$BIN" ]; then
	if command -v go >/dev/null; then
		CGO_ENABLED=1 go build -trimpath -ldflags=-s -o "$BIN" ./bench/gpu || exit 1
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

# 4: end to end: `supflow run` with the XLA trainer (bf16 ResNet-50, views
# of 224, batch 256) on a synthetic JPEG ImageFolder, decode and augment on
# E2E_WORKERS workers each (goroutines of the one process: separate worker
# processes need an external NATS and S3, which this machine lacks). The
# rate and the data-wait fraction are the train stage's "epoch trained" log
# lines (samples, seconds, wait_seconds) over the epochs after the first
# (which compiles the programs).
SUPFLOW=${SUPFLOW_BIN:-bench/gpu/supflow}
if [ ! -x "$SUPFLOW" ]; then
	if command -v go >/dev/null; then
		# cgo for the plugin, pure Go for BLAS and JPEG: links only libc.
		CGO_ENABLED=1 go build -trimpath -ldflags=-s -tags noopenblas,nolibjpeg -o "$SUPFLOW" ./cmd/supflow || exit 1
	else
		echo "GPU FAIL: e2e: no $SUPFLOW and no go to build it"
		exit 1
	fi
fi
E2E=$(mktemp -d)
WORKERS=${E2E_WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
"$BIN" -imagefolder "$E2E/photos" -classes 10 -per-class "${E2E_PER_CLASS:-256}" || echo "GPU FAIL: e2e imagefolder"
timeout "${E2E_TIMEOUT:-240}" "$SUPFLOW" run --config configs/imagenet-folder.yaml --set dataset.path="$E2E/photos" \
	--set run.work_dir="$E2E/runs" --set run.id=gpu-e2e --set log.format=json \
	--set train.backend=xla --set train.pjrt_plugin="$PLUGIN" --set model.dtype=bfloat16 \
	--set train.epochs="${E2E_EPOCHS:-3}" --set train.warm_epochs=1 --set train.knn_every=0 --set train.checkpoint_every=100 \
	--set decode.workers="$WORKERS" --set augment.workers="$WORKERS" --set evaluate.epochs=1 >"$E2E/out" 2>"$E2E/log"
rc=$?
grep -h '^RESULT' "$E2E/out" | sed 's/^/GPU e2e /'
$PY - "$E2E/log" "$WORKERS" <<'PY' || echo "GPU FAIL: e2e: no epoch trained"
import json, sys
epochs = [r for r in map(json.loads, (l for l in open(sys.argv[1]) if l.startswith("{"))) if r.get("msg") == "epoch trained"]
if not epochs:
    sys.exit(1)
timed = epochs[1:] or epochs
samples, seconds, wait = (sum(r[k] for r in timed) for k in ("samples", "seconds", "wait_seconds"))
print(f"GPU e2e samples_per_s={samples / seconds:.1f} data_wait_fraction={wait / seconds:.3f} "
      f"(epochs {timed[0]['epoch']}-{timed[-1]['epoch']}, {sys.argv[2]} decode + {sys.argv[2]} augment workers)")
PY
[ "$rc" -eq 0 ] || echo "GPU FAIL: e2e supflow run exit $rc: $(tail -1 "$E2E/log")"
rm -rf "$E2E"
