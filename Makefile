# sanigate: `make run` starts the demo, `make test` runs every test.
GO       ?= go
TOOLS    := $(CURDIR)/.tools
BIN      := $(CURDIR)/bin
INFLUXD  := $(TOOLS)/bin/influxd
INFLUXDB_VERSION := v1.8.10
NATS_SERVER := $(TOOLS)/bin/nats-server
NATS_SERVER_VERSION := v2.15.2
TELEGRAF := $(TOOLS)/bin/telegraf
TELEGRAF_VERSION := v1.37.2

export PATH := $(TOOLS)/bin:$(PATH)

.PHONY: all build run run-cluster test tools bench bench-cluster bench-peer bench-modbus soak lint vet fmt clean demo-config dashboards fuzz release cross

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Debian packages the tests talk to: a third-party Modbus stack, mosquitto_pub/_sub
# as a third-party MQTT (TLS) client, socat for a serial line between
# pseudo-terminals, Chromium (and CJK fonts for its screenshots) for the
# console's browser tests (PostgreSQL for the case store comes through
# scripts/install-postgres.sh).
DEB_PACKAGES := python3-pymodbus python3-serial python3-serial-asyncio socat mosquitto-clients chromium fonts-noto-cjk

## tools: install what tests and the demo need (InfluxDB 1.8.10 and nats-server 2.15.2 into .tools/bin, Debian packages)
tools: $(INFLUXD) $(NATS_SERVER)
	@scripts/install-packages.sh $(DEB_PACKAGES)
	@scripts/install-postgres.sh

$(INFLUXD):
	@echo ">> installing InfluxDB $(INFLUXDB_VERSION) into .tools/bin (a few minutes the first time)"
	@mkdir -p $(TOOLS)/bin
	GOBIN=$(TOOLS)/bin GOFLAGS= $(GO) install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXDB_VERSION)

# nats-server: the JetStream cluster between gateways and detectors in cluster mode.
$(NATS_SERVER):
	@echo ">> installing nats-server $(NATS_SERVER_VERSION) into .tools/bin"
	@mkdir -p $(TOOLS)/bin
	GOBIN=$(TOOLS)/bin GOFLAGS= $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

## run: start InfluxDB, the gateway and the simulated demo fleet; Ctrl-C stops all
run: tools build
	@scripts/run.sh

## run-cluster: three NATS nodes, InfluxDB, two gateways in cluster mode and the simulated fleet; Ctrl-C stops all
run-cluster: tools build
	@scripts/run-cluster.sh

## test: install tools, then run every test against the real components, then each fuzz target briefly
test: tools cross
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s FUZZ_TARGETS="$(FUZZ_QUICK)"

# Fuzz targets, as package:function: MQTT frames through the listener,
# telemetry JSON of every kind, the case API's JSON bodies. `go test` runs
# every target's seeds; `make test` also fuzzes the first two for 5s each (the
# third needs a coverage-instrumented SQLite build, minutes on a small machine).
FUZZ_QUICK   := ./broker:FuzzMQTTFrames ./telemetry:FuzzDecode
FUZZ_TARGETS ?= $(FUZZ_QUICK) ./cases:FuzzActionBody
FUZZTIME     ?= 2m

## fuzz: run each fuzz target for FUZZTIME (default 2m)
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo ">> fuzzing $$fn in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## bench: per-connection memory, reconnect storm, CPU per message and peak RSS of the gateway (and mosquitto alone)
bench: tools build
	@scripts/bench.sh

## soak: steady QoS 1 load (200 devices, 5,000 msg/s, 30 min; DURATION, RATE, OUTAGE to change), memory each minute
soak: tools build
	@scripts/soak.sh

## bench-peer: the same load through Debian's mosquitto + Telegraf into the same InfluxDB; prints the ratio (opt-in: building Telegraf takes long)
bench-peer: tools build $(TELEGRAF)
	@scripts/bench-peer.sh

$(TELEGRAF):
	@echo ">> installing Telegraf $(TELEGRAF_VERSION) into .tools/bin (long: half an hour here)"
	@mkdir -p $(TOOLS)/bin
	GOBIN=$(TOOLS)/bin GOFLAGS= $(GO) install github.com/influxdata/telegraf/cmd/telegraf@$(TELEGRAF_VERSION)

## bench-cluster: cluster-mode figures with real processes: PUBACK to case alone and in cluster mode, detection failover, one gateway against two
bench-cluster: tools
	SANIGATE_CLUSTER_FIGURES=1 $(GO) test -count=1 -timeout 20m -run '^TestClusterFigures$$' -v ./gateway/ | grep -E 'figures_test|^(---|ok|FAIL)'

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
