# sanigate: `make run` starts the demo, `make test` runs every test.
GO       ?= go
TOOLS    := $(CURDIR)/.tools
BIN      := $(CURDIR)/bin
INFLUXD  := $(TOOLS)/bin/influxd
INFLUXDB_VERSION := v1.8.10

export PATH := $(TOOLS)/bin:$(PATH)

.PHONY: all build run test tools bench bench-modbus lint vet fmt clean demo-config dashboards

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Debian packages the tests talk to: a third-party Modbus stack, socat for a
# serial line between pseudo-terminals, Chromium (and CJK fonts for its
# screenshots) for the console's browser tests (PostgreSQL
# for the case store comes through scripts/install-postgres.sh).
DEB_PACKAGES := python3-pymodbus socat chromium fonts-noto-cjk

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
test: tools
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

clean:
	rm -rf $(BIN) .run
