# sanigate: `make run` starts the demo, `make test` runs every test.
GO       ?= go
TOOLS    := $(CURDIR)/.tools
BIN      := $(CURDIR)/bin
INFLUXD  := $(TOOLS)/bin/influxd
INFLUXDB_VERSION := v1.8.10

export PATH := $(TOOLS)/bin:$(PATH)

.PHONY: all build run test tools bench bench-modbus lint vet fmt clean demo-config dashboards release cross

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Debian packages the tests talk to: a third-party Modbus stack, socat for a
# serial line between pseudo-terminals (PostgreSQL
# for the case store comes through scripts/install-postgres.sh).
DEB_PACKAGES := python3-pymodbus socat

## tools: install what tests and the demo need (InfluxDB 1.8.10 into .tools/bin, Debian packages)
tools: $(INFLUXD)
	@scripts/install-packages.sh $(DEB_PACKAGES)
	@scripts/install-postgres.sh

$(INFLUXD):
	@echo ">> installing InfluxDB $(INFLUXDB_VERSION) into .tools/bin (a few minutes the first time)"
	@mkdir -p $(TOOLS)/bin
	GOBIN=$(TOOLS)/bin GOFLAGS= $(GO) install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXDB_VERSION)

## run: start InfluxDB, the gateway and the simulated demo fleet; Ctrl-C stops all
run: tools build
	@scripts/run.sh

## test: install tools, then run every test against the real components
test: tools cross
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

## bench: ingest throughput through the gateway into InfluxDB, and against mosquitto
bench: tools build
	@scripts/bench.sh

## bench-modbus: 500 simulated Modbus devices polled every second through one gateway
bench-modbus: tools build
	@scripts/bench-modbus.sh

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

## dashboards: regenerate the Grafana dashboards in dashboards/json from their Go definitions
dashboards:
	$(GO) run ./dashboards/gen

## demo-config: regenerate examples/demo/sanigate.yaml
demo-config:
	$(GO) run ./cmd/sanisim gen-demo -out examples/demo/sanigate.yaml

# Release metadata: the version from the nearest tag, the commit, and the
# commit's time as the build date (so that a rebuild gives the same binary).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
RELEASE_ARCHES := amd64 arm64

## cross: build everything for linux/arm64 too (depot boxes are often ARM)
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) vet ./cmd/... ./telemetry/... ./broker/...

## release: static binaries for linux amd64 and arm64 in dist/, with SHA256SUMS
release:
	rm -rf dist && mkdir -p dist
	@for arch in $(RELEASE_ARCHES); do \
	  for cmd in sanigate sanisim; do \
	    echo ">> dist/$$cmd-linux-$$arch"; \
	    CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -tags timetzdata -ldflags "$(LDFLAGS)" \
	      -o dist/$$cmd-linux-$$arch ./cmd/$$cmd || exit 1; \
	  done; \
	done
	cd dist && sha256sum sanigate-* sanisim-* > SHA256SUMS
	@cat dist/SHA256SUMS

clean:
	rm -rf $(BIN) .run dist
