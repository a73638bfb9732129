# zipq — `make run` starts everything, `make test` tests everything.
GO      ?= go
BIN     := bin/zipq
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# A Node.js that scripts/ui-deps.sh pinned (when the machine's is missing or
# older than 20) comes first; only the tests use Node.
export PATH := $(CURDIR)/web/.node/bin:$(PATH)

.PHONY: help run test test-web test-go test-fresh test-cluster bench fuzz build ui services lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

services: ## bring up PostgreSQL and RabbitMQ on 127.0.0.1 if they are not answering
	@scripts/services.sh

ui: ## bundle the web UI into web/dist/ui with esbuild's Go API (Go only; embedded by the next go build)
	$(GO) run ./web/build

build: ui ## build bin/zipq with the UI embedded
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/zipq

run: services build ## start services if needed, migrate, run zipq serve on 127.0.0.1:9411
	$(BIN) migrate
	$(BIN) serve

# golangci-lint, pinned, built from the Go module proxy once per machine
# (not per clone: building it takes minutes on 2 cores) into the user's
# cache directory.
GOLANGCI_LINT_VERSION := v2.15.0
TOOLS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/zipq/tools
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)

$(GOLANGCI_LINT):
	GOBIN=$(TOOLS)/build $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $(TOOLS)/build/golangci-lint $@

lint: $(GOLANGCI_LINT) ## gofmt, go vet and golangci-lint (.golangci.yml: errorlint, sloglint, gocritic, ...) must be clean
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

test: services ui ## every test, with the race detector, against the real services, UI in Chromium; lint alongside
	@scripts/ui-deps.sh --browser
	@$(MAKE) --no-print-directory -j3 -Otarget lint test-web test-go

# The parts of make test, run side by side: the Go tests mostly wait on
# PostgreSQL, RabbitMQ and timers, so lint and the UI's checks fill the
# cores they leave idle (docs/BENCHMARKS.md, "make test").
test-web:
	cd web && npm run --silent check && npm run --silent test

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...

test-fresh: ## (root) scripts/services.sh, then zipq, on throwaway Debian 12 roots with no PostgreSQL or RabbitMQ
	scripts/fresh-machine.sh

test-cluster: services ## a 3-node RabbitMQ cluster of its own, two collectors and a query process, nodes stopped mid-stream (~2 min)
	ZIPQ_TEST_CLUSTER=1 $(GO) test -race -count=1 -timeout 10m -run '^TestClusterFailover$$' -v ./cmd/zipq

bench: services build ## benchmarks (not part of test): Go benchmarks, then zipq-bench rewrites its section of docs/BENCHMARKS.md
	@scripts/ui-deps.sh --browser
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 60m ./...
	$(GO) run ./cmd/zipq-bench -zipq $(BIN) $(BENCHFLAGS)
	$(GO) run ./cmd/zipq-bench -zipq $(BIN) -only auth

fuzz: ## run each fuzz target (decoders incl. OTLP, canonical encoding, annotationQuery, TraceQL search and metrics, linker, stored segments, marks, sketches and stats batches, span columns, auth headers) for FUZZTIME (default 30s)
	@for t in zipkin:FuzzDecode zipkin:FuzzDecodeJSON zipkin:FuzzDecodeProto zipkin:FuzzDecodeJSONLikeEncodingJSON \
		zipkin:FuzzUnmarshalCanonical ingest:FuzzDecodeOTLP zipkin:FuzzParseAnnotationQuery zipkin:FuzzLink storage:FuzzSegment storage:FuzzNamedEdges storage:FuzzLinksRecord storage:FuzzSketch storage:FuzzStrip storage:FuzzStatBatch storage:FuzzBlockRef storage:FuzzBlockDir storage:FuzzDecompressPrefix storage:FuzzIndexGroup storage:FuzzIndexGroupBounds traceql:FuzzParse traceql:FuzzParseMetrics traceql:FuzzSpanColumns \
		auth:FuzzCredential auth:FuzzParseTokens internal/tenant:FuzzParse internal/tenant:FuzzParseTable; do \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $${FUZZTIME:-30s} ./$${t%%:*} || exit 1; done

clean:
	rm -rf bin web/dist/ui web/node_modules web/.deps web/.node
