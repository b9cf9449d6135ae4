# gatecheck: `make help` lists the targets. The two that matter: `make conformance`, `make test`.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

# Go lives in /usr/local/go on our machines; a fresh root shell may not have it on PATH, and
# gatecheck run itself calls go (to compile the suites and images).
export PATH := /usr/local/go/bin:$(PATH)
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
# No DWARF compiled (the link's -w drops it anyway): as the image builder (cluster/images,
# NoDWARF), so that the packages gatecheck and the images share compile once.
NODWARF   := -gcflags=all=-dwarf=false
LDFLAGS   := -s -w -X github.com/gatecheck/gatecheck/internal/version.Version=$(VERSION)
BIN       := $(CURDIR)/bin
GATECHECK := $(BIN)/gatecheck

# conformance knobs (see README): CLUSTER=auto|kind|host|existing IMPL=reference SUITES=... LABELS=...
CLUSTER ?= auto
IMPL    ?= reference
SUITES  ?= all
LABELS  ?=
OUT     ?=
KEEP    ?=
GATE    ?=
KUBECONFIG ?=

export GATECHECK_CACHE ?= $(HOME)/.cache/gatecheck
CLUSTER_FLAG = $(if $(filter-out auto,$(CLUSTER)),--cluster $(CLUSTER))

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/gatecheck
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath $(NODWARF) -ldflags '$(LDFLAGS)' -o $(GATECHECK) ./cmd/gatecheck

.PHONY: conformance
conformance: build ## Bring up a cluster, install IMPL, run upstream conformance + gatecheck suites, write reports (CLUSTER, IMPL, SUITES, LABELS, OUT, KEEP=1, GATE)
	@rc=0; $(GATECHECK) run --cluster $(CLUSTER) --impl $(IMPL) --suites '$(SUITES)' \
		$(if $(LABELS),--labels '$(LABELS)') $(if $(OUT),--out '$(OUT)') $(if $(KEEP),--keep) \
		$(if $(GATE),--gate '$(GATE)') $(if $(KUBECONFIG),--kubeconfig '$(KUBECONFIG)') || rc=$$?; \
	echo "==> gatecheck exit code $$rc (0 passed, 1 a verdict failed, 2 could not run)$$( [ $$rc = 0 ] || echo '; make reports any failure as 2: CI should run hack/gatecheck run ..., which keeps the code')"; \
	exit $$rc

.PHONY: test
test: ## Unit and in-process integration tests (no cluster, no root; < 5 min)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 8m ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 5s)
	@hack/fuzz.sh $${FUZZTIME:-5s}

.PHONY: e2e
e2e: build ## End-to-end tests on a real host cluster (root; tears down any running host cluster first)
	$(GO) test -tags e2e -count=1 -timeout 40m -v -p 1 ./cluster/... ./runner/...

.PHONY: images
images: build ## Build the OCI images (echo-backend, reference controller/proxy, upstream echo-basic) and load them into the cluster
	$(GATECHECK) cluster load-images $(CLUSTER_FLAG)

.PHONY: image
image: build ## The gatecheck container image as a docker-archive tarball (no engine; tag gatecheck.dev/gatecheck:dev) in bin/images; run it with a mounted kubeconfig and --cluster existing
	$(GATECHECK) images build gatecheck --out $(BIN)/images

.PHONY: cluster-up
cluster-up: build ## Bring up a cluster (CLUSTER=auto|kind|host|existing)
	$(GATECHECK) cluster up $(CLUSTER_FLAG)

.PHONY: cluster-down
cluster-down: build ## Tear down the cluster gatecheck created
	$(GATECHECK) cluster down $(CLUSTER_FLAG)

.PHONY: host-binaries
host-binaries: ## Build the pinned Kubernetes, containerd and etcd binaries into $(GATECHECK_CACHE)
	hack/build-host-binaries.sh all

.PHONY: bench
bench: ## Benchmarks that print ratios against a baseline measured in the same run
	@echo "== echo-backend vs upstream echo-basic (throughput ratio, same client, same run)"
	$(GO) test -count=1 -run '^$$' -bench BenchmarkEchoVsEchoBasic -benchtime 1x ./echo-backend/
	@echo "== weight verdicts: false-failure rate and power (exact, and simulated against a fixed-size test)"
	$(GO) test -count=1 -v -run 'TestCanary9010|TestDesignTable|TestExactAlpha' ./verdict/ | grep -v '^=== RUN'
	@echo "== reference controller and proxy: cost of one route change among 1,000 (incremental vs full, same run), in-process propagation"
	$(GO) test -count=1 -v -run 'TestMemoSpeedup|TestMemoRoutesSpeedup' ./reference-impl/translate/ | grep ratio
	$(GO) test -count=1 -v -run 'TestApplyIncrementalVsFull' ./reference-impl/proxy/ | grep -i ratio
	$(GO) test -count=1 -v -run 'TestPropagationInProcess' ./reference-impl/controller/ | grep -E 'routes|ratio'
	@if [ -x hack/bench-proxy.sh ]; then echo "== reference proxy vs nginx"; hack/bench-proxy.sh; fi

.PHONY: bench-propagation
bench-propagation: build ## Root: route propagation with 1,000 routes and controller memory with 5,000 on the host cluster (brings it up, tears it down)
	$(GATECHECK) run --cluster host --suites propagation --keep --out _out/bench-propagation
	KUBECONFIG=/var/lib/gatecheck/host/pki/admin.kubeconfig MEMORY_ROUTES=$${MEMORY_ROUTES:-5000} \
		$(GO) test -count=1 -tags cluster -timeout 30m -v -run 'TestPropagation$$' ./reference-impl/controller/ \
		| grep -v '^=== RUN'; rc=$${PIPESTATUS[0]}; $(GATECHECK) cluster down --cluster host; exit $$rc

.PHONY: lint
lint: ## gofmt, go vet
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e,conformance ./...
	$(GO) vet -tags cluster ./reference-impl/...

.PHONY: clean
clean: ## Remove build outputs (not the binary cache in GATECHECK_CACHE, not reports)
	rm -rf $(BIN) _out
