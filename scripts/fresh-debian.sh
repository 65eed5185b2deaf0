#!/usr/bin/env bash
# Checks the README's promise on a fresh Debian machine, without a
# registry: debootstraps a minimal bookworm, imports it as a Docker image,
# and in a container of it (with only gcc, make and git installed, Go
# mounted from the host, no OpenBLAS, no libjpeg) runs `make demo` on a
# clone of HEAD, then `supflow version` and a small `supflow run` outside
# the repository. Needs root, debootstrap and Docker; about 1 minute plus
# the demo (4-15 minutes on 2 shared cores, with a cold build cache).
#
# The host's module cache is mounted read-only with GOPROXY=off: a machine
# whose egress re-signs TLS with its own CA (as this project's sandbox does)
# cannot reach the module proxy from a fresh root filesystem, nor the
# checksum database, which `go mod download` of the MNIST module outside
# any module (supflow's ingest) asks unless its lookup is in the host's
# cache: GOSUMDB=off too, for modules the host verified when it fetched them.
# FRESH_GOPROXY=https://proxy.golang.org downloads the modules instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${SUPFLOW_CACHE:-$HOME/.cache/supflow}
root=$cache/debian-bookworm
image=supflow-fresh-debian:bookworm
if ! docker image inspect "$image" >/dev/null 2>&1; then
  [ -d "$root" ] || debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
  tar -C "$root" -c . | docker import - "$image"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$PWD" "$work/src"
git -C "$work/src" checkout -q "$(git rev-parse HEAD)"
cat >"$work/run.sh" <<'INNER'
#!/bin/sh
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends gcc libc6-dev make git ca-certificates >/dev/null
export PATH=/usr/local/go/bin:$PATH HOME=/root GOFLAGS=
echo "== $(cat /etc/debian_version), $(go version), $(gcc --version | head -1), GOPROXY=${GOPROXY:-default}"
echo "== OpenBLAS and libjpeg files: $(ls /usr/lib/x86_64-linux-gnu | grep -cE 'openblas|libjpeg')"
cd /src
start=$(date +%s)
make demo 2>&1 | grep -vE 'level=(INFO|DEBUG)' | tail -8
echo "== make demo: $(( $(date +%s) - start )) s, $(go version -m bin/supflow | grep -o 'CGO_ENABLED=[01]')"
bin/supflow version
mkdir -p /tmp/elsewhere && cd /tmp/elsewhere
/src/bin/supflow run --config /src/deploy/pipeline.compose.yaml --set dataset.limit_train=500 --set dataset.limit_test=500 \
  --set train.epochs=1 --set train.knn_every=0 --set evaluate.epochs=2 2>&1 | grep -E 'RESULT|rror'
INNER
chmod +x "$work/run.sh"
mods=()
if [ -z "${FRESH_GOPROXY:-}" ]; then
  mods=(-v "$(go env GOMODCACHE):/gomodcache:ro" -e GOMODCACHE=/gomodcache -e GOPROXY=off -e GOSUMDB=off)
else
  mods=(-e GOPROXY="$FRESH_GOPROXY")
fi
docker run --rm -v "$(go env GOROOT):/usr/local/go:ro" "${mods[@]}" \
  -v "$work/src:/src" -v "$work/run.sh:/run.sh:ro" "$image" /run.sh
