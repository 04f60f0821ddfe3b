// Package gateway assembles the parts of sanigate into one running gateway:
// the spool, the ingest pipeline, the embedded MQTT broker, the Modbus
// poller, the InfluxDB writer, the detectors, the case service and the HTTP
// endpoints (metrics, health, readiness, the case API). Its supervisor runs
// the long-running ones as one group, restarts a failed one with backoff and
// reports it in /readyz, and stops them in order. Each adapter between two
// packages sits beside the component it adapts (spool.go, writer.go,
// cases.go, violations.go, modbus.go, http.go). cmd/sanigate is a thin shell
// around it, and tests run the very same assembly in-process.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sanigate/sanigate/broker"
	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/console"
	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// Gateway is one running sanigate.
type Gateway struct {
	cfg      *fleet.Config
	log      *slog.Logger
	reg      *prometheus.Registry
	registry *fleet.Registry

	spool     *spool.Spool
	recovery  spool.Recovery
	pipeline  *telemetry.Pipeline
	writer    *telemetry.Writer
	history   *influxReadback // InfluxDB read back for the detectors, with the writer role
	broker    *broker.Broker
	httpLn    net.Listener // the HTTP listener, for its address
	httpFirst net.Listener // the listener Start opened, until first served
	https     *http.Server
	httpsLn   net.Listener
	sm        *spool.Metrics
	gps       *fleet.GPSFilter // the ingest's GPS filter; a reload sets its limits
	console   *console.Console // the dispatcher console, when this process serves the API
	// The Modbus section in force and its poller (nil until a device is
	// polled): a reload replaces the one and starts the other, while the
	// device directory reads them (modbus.go).
	modbus    atomic.Pointer[modbus.Config]
	poller    atomic.Pointer[modbus.Poller]
	casesCfg  cases.Config
	cases     *cases.Service
	detCfg    violations.Config
	detectors *violations.Engine
	sup       *supervisor

	// Cluster mode (cluster.go): the forwarder runs under cancel and wg,
	// partition-owning detection under detCancel and detWG.
	forwarder  *cluster.Forwarder
	clusterDet *cluster.Detector
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	detCancel  context.CancelFunc
	detWG      sync.WaitGroup

	retentionStop context.CancelFunc

	// Live configuration (reload.go): the configuration in force, one
	// reload or registry change at a time, the registry version installed.
	live       atomic.Pointer[fleet.Config]
	liveDet    atomic.Pointer[violations.Config]
	reloadMu   sync.Mutex
	regVersion atomic.Int64
	regKick    chan struct{}
	closing    bool // Close began, under reloadMu
	// partEngines are the cluster partitions' engines, by partition, under
	// reloadMu.
	partEngines map[int]*violations.Engine
	reloads     *prometheus.CounterVec

	readyMu  sync.Mutex
	influxOK error

	// Profiling serves Go's profiler under /debug/pprof/ (set before Start).
	Profiling bool
	// Roles are the parts this process runs (set before Start; empty: all).
	Roles Roles
	// Overrides, if set, is applied to the configuration Reload reads, as
	// the command line's flags were to the first one.
	Overrides func(*fleet.Config)
}

// New builds the gateway from a configuration loaded by fleet.Load or
// fleet.Parse, which decoded and checked every section (modbus, cases,
// violations) in the same pass. Nothing listens until Start.
func New(cfg *fleet.Config, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, log: log, reg: prometheus.NewRegistry(), registry: fleet.NewRegistry(cfg.Devices),
		casesCfg: cases.FromConfig(cfg), detCfg: violations.FromConfig(cfg)}
	g.modbus.Store(modbus.FromConfig(cfg))
	g.regKick = make(chan struct{}, 1)
	g.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sanigate_config_reloads_total",
		Help: "Configuration reloads (SIGHUP or the admin API), by result: applied or refused."}, []string{"result"})
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), g.reloads)
	g.influxOK = errors.New("not checked yet")
	return g, nil
}

// Registry is the gateway's Prometheus registry.
func (g *Gateway) Registry() *prometheus.Registry { return g.reg }

// Recovery says what the spool repaired when it opened.
func (g *Gateway) Recovery() spool.Recovery { return g.recovery }

// Pipeline is the ingest pipeline (for drivers that feed it directly).
func (g *Gateway) Pipeline() *telemetry.Pipeline { return g.pipeline }

// MQTTAddr is the broker's listening address.
func (g *Gateway) MQTTAddr() string { return g.broker.Addr() }

// HTTPAddr is the HTTP server's listening address.
func (g *Gateway) HTTPAddr() string { return g.httpLn.Addr().String() }

// Detectors is the violation engine.
func (g *Gateway) Detectors() *violations.Engine { return g.detectors }

// Cases is the case service.
func (g *Gateway) Cases() *cases.Service { return g.cases }

// Poller is the Modbus poller, or nil while no device was ever polled.
func (g *Gateway) Poller() *modbus.Poller { return g.poller.Load() }

// Broker is the embedded broker.
func (g *Gateway) Broker() *broker.Broker { return g.broker }

// Start opens the spool and starts the components in order: the InfluxDB
// writer, the case workers, the detectors, the HTTP server, the Modbus
// poller, and last the MQTT broker (input comes last, so that everything
// that consumes it is running). Each long-running component runs under the
// supervisor, which restarts it after a failure. On error, whatever started
// is stopped again.
func (g *Gateway) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = g.Close(context.Background())
		}
	}()
	g.sup = newSupervisor(g.reg, g.log.With("component", "supervisor"))
	tm, err := telemetry.NewMetrics(g.reg)
	if err != nil {
		return err
	}
	steps := []func() error{
		g.openSpool,
		func() error { return g.startWriter(tm) },
		func() error { return g.buildIngest(tm) },
		func() error { return g.startCases(ctx) },
		g.startDetectors,
		g.startClusterMode,
		g.startHTTP,
		g.startModbus,
		g.startBroker,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	g.log.Info("gateway started", "mqtt", g.MQTTAddr(), "http", g.HTTPAddr(), "influxdb", g.cfg.InfluxDB.URL,
		"bucket", g.cfg.InfluxDB.Bucket, "devices", g.registry.Len(), "spool", g.cfg.Resolve(g.cfg.Spool.Dir), "roles", g.Roles)
	return nil
}

// gpsConfig is the GPS filter's limits in cfg: a fix may be as far ahead
// of the clock as a reading may, unless gps says otherwise.
func gpsConfig(cfg *fleet.Config) fleet.GPSFilterConfig {
	c := cfg.GPS
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = cfg.Ingest.MaxFutureSkew
	}
	return c
}

// buildIngest makes the pipeline (decode, check, place, append to the
// spool) and the broker that feeds it; the broker listens from the start,
// but takes no connection before startBroker.
func (g *Gateway) buildIngest(tm *telemetry.Metrics) error {
	cfg := g.cfg
	codec := telemetry.NewCodec()
	codec.MaxFutureSkew = cfg.Ingest.MaxFutureSkew.D()
	codec.MaxAge = cfg.Ingest.MaxAge.D()
	codec.MaxReadings = cfg.Ingest.MaxReadings
	// The map is the live one: a reload may bring new places, and new GPS
	// filter limits (g.gps.Set).
	placer := livePlacer{g}
	g.gps = fleet.NewGPSFilter(gpsConfig(cfg))
	g.pipeline = telemetry.NewPipeline(telemetry.PipelineOptions{
		Codec: codec, Fleet: g.registry, Sink: appendCounter{g.spool, g.sm}, Metrics: tm,
		Logger: g.log.With("component", "ingest"), Placer: placer, GPS: g.gps,
	})
	mqttTLS, err := g.mqttTLS()
	if err != nil {
		return err
	}
	router := newCommandRouter(g.pipeline, g)
	g.broker, err = broker.New(broker.Options{
		Address: cfg.MQTT.Address, MaxPacketBytes: cfg.MQTT.MaxPacketBytes,
		TLSAddress: cfg.MQTT.TLSAddress, TLS: mqttTLS,
		Known:            func(id string) bool { _, ok := g.registry.Device(id); return ok },
		MaxSubscriptions: cfg.MQTT.MaxSubscriptions, MaxFilterBytes: cfg.MQTT.MaxFilterBytes,
		MaxSessionExpiry:     cfg.MQTT.MaxSessionExpiry.D(),
		MaxSessionsPerDevice: cfg.MQTT.MaxSessionsPerDevice,
		OnCommandDelivered:   router.delivered,
		Auth:                 g.registry, Handler: router, Logger: g.log.With("component", "mqtt"), Registerer: g.reg,
		OnLastWill: func(device string) {
			if d := g.detectors; d != nil {
				d.Offline(device, time.Now())
			}
			g.forwardWill(device)
		},
	})
	if err != nil {
		return listenError("mqtt", cfg.MQTT.Address, err)
	}
	return nil
}

// startClusterMode starts forwarding and partition-owning detection in
// cluster mode (cluster.go); they stop with Close, before the writer.
func (g *Gateway) startClusterMode() error {
	runCtx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	return g.startCluster(runCtx)
}

// startBroker lets devices in (edge role).
func (g *Gateway) startBroker() error {
	if !g.Roles.Has(RoleEdge) {
		return nil
	}
	if err := g.broker.Start(); err != nil {
		return listenError("mqtt", g.cfg.MQTT.Address, err)
	}
	return nil
}

// listenError names the listener that could not listen and the settings
// that move it, so that "address already in use" says what to change.
func listenError(listener, addr string, err error) error {
	setting := map[string]string{
		"mqtt": "mqtt.address in the configuration, -mqtt-address or SANIGATE_MQTT_ADDRESS",
		"http": "http.address in the configuration, -http-address or SANIGATE_HTTP_ADDRESS",
	}[listener]
	return fmt.Errorf("%s listener cannot listen on %s (another process may hold it; set %s): %w", listener, addr, setting, err)
}

// Close stops the gateway in order: the broker (no new input), the Modbus
// poller, the detectors, the case workers and store, the writer, the spool,
// and last the HTTP server. It is safe to call more than once.
func (g *Gateway) Close(ctx context.Context) error {
	var errs []error
	if g.broker != nil {
		g.log.Info("stopping mqtt broker")
		if err := g.broker.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
		}
		g.broker = nil
	}
	// From here a reload does not start a poller that nothing would stop.
	g.reloadMu.Lock()
	g.closing = true
	g.reloadMu.Unlock()
	g.stop("modbus", "stopping modbus polling")
	g.stop("detectors", "stopping detectors")
	if g.detCancel != nil {
		g.log.Info("stopping cluster detection")
		g.detCancel()
		g.detWG.Wait()
		g.detCancel = nil
	}
	g.stop("registry", "")
	g.stop("cases", "stopping case workers")
	if g.cases != nil {
		if err := g.cases.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cases: %w", err))
		}
		g.cases = nil
	}
	if g.retentionStop != nil {
		g.retentionStop()
	}
	if g.cancel != nil {
		g.log.Info("stopping cluster forwarder")
		g.cancel()
		g.wg.Wait()
		g.cancel = nil
	}
	g.stop("readiness", "")
	g.stop("writer", "stopping writer")
	if g.writer != nil {
		g.writer.Close()
		g.writer = nil
	}
	if g.spool != nil {
		g.log.Info("closing spool")
		if err := g.spool.Close(); err != nil {
			errs = append(errs, fmt.Errorf("spool: %w", err))
		}
		g.spool = nil
	}
	g.stop("http", "stopping http server")
	if g.https != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = g.https.Shutdown(sctx)
		cancel()
		g.https = nil
	}
	return errors.Join(errs...)
}

// stop stops a supervised component and waits for it, logging msg first.
func (g *Gateway) stop(name, msg string) {
	if g.sup == nil || !g.sup.running(name) {
		return
	}
	if msg != "" {
		g.log.Info(msg)
	}
	g.sup.stop(name)
}

// livePlacer places positions on the city's map in force.
type livePlacer struct{ g *Gateway }

func (p livePlacer) Place(lat, lon float64) (string, []string) {
	m := p.g.liveConfig().Map
	if m == nil {
		return "", nil
	}
	loc := m.Locate(lat, lon)
	return loc.District, loc.Sites
}
