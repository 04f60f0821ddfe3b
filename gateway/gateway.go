// Package gateway assembles the parts of sanigate into one running gateway:
// the spool, the pipeline, the embedded broker, the InfluxDB writer and the
// HTTP endpoints, started and stopped in order. cmd/sanigate is a thin shell
// around it, and tests run the very same assembly in-process.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sanigate/sanigate/broker"
	"github.com/sanigate/sanigate/cases"
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

	spool       *spool.Spool
	recovery    spool.Recovery
	pipeline    *telemetry.Pipeline
	writer      *telemetry.Writer
	broker      *broker.Broker
	http        *http.Server
	httpLn      net.Listener
	https       *http.Server
	httpsLn     net.Listener
	sm          *spoolMetrics
	modbus      *modbus.Config
	poller      *modbus.Poller
	casesCfg    cases.Config
	cases       *cases.Service
	casesWG     sync.WaitGroup
	casesCancel context.CancelFunc
	detCfg      violations.Config
	detectors   *violations.Engine
	detCancel   context.CancelFunc
	detWG       sync.WaitGroup

	cancel context.CancelFunc
	wg     sync.WaitGroup

	readyMu  sync.Mutex
	influxOK error

	// Profiling serves Go's profiler under /debug/pprof/ (set before Start).
	Profiling bool
}

// New builds the gateway from a loaded configuration. Nothing listens until Start.
func New(cfg *fleet.Config, log *slog.Logger) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mc, err := ModbusConfig(cfg)
	if err != nil {
		return nil, err
	}
	cc, err := CasesConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := ViolationsConfig(cfg)
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: log, reg: prometheus.NewRegistry(), registry: fleet.NewRegistry(cfg.Devices), modbus: mc, casesCfg: cc, detCfg: dc}
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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

// polledRecently reports whether a Modbus device answered within three poll intervals.
func (g *Gateway) polledRecently(id string) bool {
	if g.poller == nil {
		return false
	}
	last := g.poller.LastSuccess(id)
	if last.IsZero() {
		return false
	}
	for _, d := range g.modbus.Devices {
		if d.ID == id {
			return time.Since(last) < 3*d.PollInterval
		}
	}
	return false
}

// Poller is the Modbus poller, or nil when no device is polled.
func (g *Gateway) Poller() *modbus.Poller { return g.poller }

// Broker is the embedded broker.
func (g *Gateway) Broker() *broker.Broker { return g.broker }

// Start opens the spool, starts the writer, the broker and the HTTP server.
// On error, whatever started is stopped again.
func (g *Gateway) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = g.Close(context.Background())
		}
	}()
	cfg := g.cfg
	tm, err := telemetry.NewMetrics(g.reg)
	if err != nil {
		return err
	}
	g.sm = newSpoolMetrics(g.reg)
	dir := cfg.Resolve(cfg.Spool.Dir)
	sp, rec, err := spool.Open(dir, spool.Options{
		MaxBytes:     cfg.Spool.MaxBytes,
		SegmentBytes: cfg.Spool.SegmentBytes,
		SyncDelay:    cfg.Spool.SyncDelay.D(),
		SyncRecords:  cfg.Spool.SyncRecords,
		MinFreeBytes: cfg.Spool.MinFreeBytes,
		OnSync:       g.sm.observeSync,
	})
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	g.spool, g.recovery = sp, rec
	g.logRecovery(dir, rec)
	cons, err := sp.Consumer("influxdb")
	if err != nil {
		return err
	}
	g.sm.watch(sp, cons)

	token, err := cfg.InfluxToken()
	if err != nil {
		return err
	}
	g.writer = telemetry.NewWriter(cons, telemetry.WriterOptions{
		URL: cfg.InfluxDB.URL, Org: cfg.InfluxDB.Org, Bucket: cfg.InfluxDB.Bucket, Token: token,
		BatchSize: cfg.InfluxDB.BatchSize, FlushInterval: cfg.InfluxDB.FlushInterval.D(), Timeout: cfg.InfluxDB.Timeout.D(),
		DeadLetterFile: filepath.Join(dir, "dead-letter.lp"),
		Metrics:        tm, Logger: g.log.With("component", "writer"),
	})

	codec := telemetry.NewCodec()
	codec.MaxFutureSkew = cfg.Ingest.MaxFutureSkew.D()
	codec.MaxAge = cfg.Ingest.MaxAge.D()
	codec.MaxReadings = cfg.Ingest.MaxReadings
	gpsCfg := cfg.GPS
	if gpsCfg.MaxFutureSkew == 0 {
		gpsCfg.MaxFutureSkew = cfg.Ingest.MaxFutureSkew
	}
	var placer telemetry.Placer
	if cfg.Map != nil {
		placer = mapPlacer{cfg.Map}
	}
	g.pipeline = telemetry.NewPipeline(telemetry.PipelineOptions{
		Codec: codec, Fleet: g.registry, Sink: appendCounter{sp, g.sm}, Metrics: tm,
		Logger: g.log.With("component", "ingest"), Placer: placer, GPS: fleet.NewGPSFilter(gpsCfg),
	})

	mqttTLS, err := g.mqttTLS()
	if err != nil {
		return err
	}
	g.broker, err = broker.New(broker.Options{
		Address: cfg.MQTT.Address, MaxPacketBytes: cfg.MQTT.MaxPacketBytes,
		TLSAddress: cfg.MQTT.TLSAddress, TLS: mqttTLS,
		Known:            func(id string) bool { _, ok := g.registry.Device(id); return ok },
		MaxSubscriptions: cfg.MQTT.MaxSubscriptions, MaxFilterBytes: cfg.MQTT.MaxFilterBytes,
		MaxSessionExpiry:     cfg.MQTT.MaxSessionExpiry.D(),
		MaxSessionsPerDevice: cfg.MQTT.MaxSessionsPerDevice,
		Auth:                 g.registry, Handler: g.pipeline, Logger: g.log.With("component", "mqtt"), Registerer: g.reg,
		OnLastWill: func(device string) {
			if d := g.detectors; d != nil {
				d.Offline(device, time.Now())
			}
		},
	})
	if err != nil {
		return err
	}

	g.cases, err = cases.Open(ctx, g.casesCfg, cases.Deps{
		Calendar: cfg.WorkCalendar, Location: cfg.Location(), Publisher: g.broker, Points: spoolPoints{sp},
		Devices:    directory{reg: g.registry, cfg: cfg, pipeline: g.pipeline, broker: g.broker, polled: g.polledRecently},
		Registerer: g.reg, Logger: g.log.With("component", "cases"), Dir: filepath.Dir(cfg.File),
	})
	if err != nil {
		return fmt.Errorf("cases: %w", err)
	}
	casesCtx, casesCancel := context.WithCancel(context.Background())
	g.casesCancel = casesCancel
	g.casesWG.Add(1)
	go func() {
		defer g.casesWG.Done()
		if err := g.cases.Run(casesCtx); err != nil && casesCtx.Err() == nil {
			g.log.Error("case workers stopped", "error", err)
		}
	}()

	detCons, err := sp.Consumer("detectors")
	if err != nil {
		return err
	}
	g.sm.watch(sp, detCons)
	raised := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sanigate_violations_total", Help: "Violations the detectors raised, by type and severity.",
	}, []string{"type", "severity"})
	g.reg.MustRegister(raised)
	g.detectors = violations.NewEngine(cfg, g.detCfg, violationSink{sp: sp, cases: g.cases, log: g.log.With("component", "violations"), raised: raised},
		violations.EngineOptions{StateDir: dir + "-state", Registerer: g.reg, Logger: g.log.With("component", "detectors")})
	detCtx, detCancel := context.WithCancel(context.Background())
	g.detCancel = detCancel
	g.detWG.Add(1)
	go func() {
		defer g.detWG.Done()
		if err := g.detectors.Run(detCtx, detCons); err != nil {
			g.log.Error("detectors stopped", "error", err)
		}
	}()

	runCtx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		if err := g.writer.Run(runCtx); err != nil {
			g.log.Error("writer stopped", "error", err)
		}
	}()
	go func() {
		defer g.wg.Done()
		g.watchReadiness(runCtx)
	}()

	if err := g.startHTTP(); err != nil {
		return err
	}
	if len(g.modbus.Devices) > 0 {
		g.poller, err = modbus.NewPoller(g.modbus, g.pipeline, modbus.Options{Registerer: g.reg, Logger: g.log.With("component", "modbus")})
		if err != nil {
			return err
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.poller.Run(runCtx); err != nil {
				g.log.Error("modbus poller stopped", "error", err)
			}
		}()
	}
	if err := g.broker.Start(); err != nil {
		return err
	}
	g.log.Info("gateway started", "mqtt", g.MQTTAddr(), "http", g.HTTPAddr(), "influxdb", cfg.InfluxDB.URL,
		"bucket", cfg.InfluxDB.Bucket, "devices", g.registry.Len(), "spool", dir)
	return nil
}

func (g *Gateway) logRecovery(dir string, rec spool.Recovery) {
	if rec.TornTail > 0 {
		g.log.Warn("spool: cut a torn record at the end of the log (power loss or kill during a write)", "dir", dir, "bytes", rec.TornTail)
	}
	for _, q := range rec.Quarantined {
		g.log.Error("spool: corrupt segment copied to quarantine and cut back to its last good record", "copy", q)
	}
	if rec.LostBytes > 0 {
		g.log.Error("spool: bytes lost to corruption", "bytes", rec.LostBytes)
	}
	g.log.Info("spool opened", "dir", dir, "segments", rec.Segments, "records", rec.Records)
}

// Close stops the gateway in order: the broker (no new input), then the
// spool's consumers, then the spool, then HTTP. It is safe to call more than once.
func (g *Gateway) Close(ctx context.Context) error {
	var errs []error
	if g.broker != nil {
		g.log.Info("stopping mqtt broker")
		if err := g.broker.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("broker: %w", err))
		}
		g.broker = nil
	}
	if g.poller != nil {
		g.log.Info("stopping modbus polling")
		_ = g.poller.Close()
		g.poller = nil
	}
	if g.detCancel != nil {
		g.log.Info("stopping detectors")
		g.detCancel()
		g.detWG.Wait()
		g.detCancel = nil
	}
	if g.casesCancel != nil {
		g.log.Info("stopping case workers")
		g.casesCancel()
		g.casesWG.Wait()
		g.casesCancel = nil
	}
	if g.cases != nil {
		if err := g.cases.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cases: %w", err))
		}
		g.cases = nil
	}
	if g.cancel != nil {
		g.log.Info("stopping writer")
		g.cancel()
		g.wg.Wait()
		g.cancel = nil
	}
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
	if g.http != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = g.http.Shutdown(sctx)
		cancel()
		g.http = nil
	}
	if g.https != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = g.https.Shutdown(sctx)
		cancel()
		g.https = nil
	}
	return errors.Join(errs...)
}

// mapPlacer places positions on the city's map.
type mapPlacer struct{ m *fleet.Places }

func (p mapPlacer) Place(lat, lon float64) (string, []string) {
	loc := p.m.Locate(lat, lon)
	return loc.District, loc.Sites
}
