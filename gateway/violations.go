package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// startDetectors starts the detectors, the spool's second consumer.
func (g *Gateway) startDetectors() error {
	if !g.Roles.Has(RoleDetect) || len(g.cfg.Cluster.NATS) > 0 {
		return nil // in cluster mode, see startCluster
	}
	cons, err := g.spool.Consumer("detectors")
	if err != nil {
		return err
	}
	g.sm.Watch(g.spool, cons)
	raised := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sanigate_violations_total", Help: "Violations the detectors raised, by type and severity.",
	}, []string{"type", "severity"})
	g.reg.MustRegister(raised)
	dir := g.cfg.Resolve(g.cfg.Spool.Dir)
	var history violations.History
	if g.history != nil {
		history = g.history // spans older than the detectors' memory are read back (readback.go)
	}
	g.detectors = violations.NewEngine(g.liveConfig(), g.detCfg,
		violationSink{sp: g.spool, cases: g.cases, log: g.log.With("component", "violations"), raised: raised},
		violations.EngineOptions{StateDir: dir + "-state", Registerer: g.reg, MaxAge: g.cfg.Ingest.MaxAge.D(),
			History: history, Logger: g.log.With("component", "detectors")})
	e := g.detectors
	g.sup.start(component{name: "detectors", run: func(ctx context.Context) error {
		err := e.Run(ctx, cons)
		if err != nil {
			cons.Rewind()
		}
		return err
	}})
	return nil
}

// violationSink stores what the detectors raise in InfluxDB (through the
// spool, so an outage loses nothing) and files it as a case.
type violationSink struct {
	sp     *spool.Spool
	cases  *cases.Service
	log    *slog.Logger
	raised *prometheus.CounterVec
}

// Raise files v as a case, then appends it to the spool (for InfluxDB): the
// case store is the one that may refuse it (a stale fencing token in
// cluster mode), and both take a repeat of the same key as one.
func (s violationSink) Raise(ctx context.Context, v violations.Violation) error {
	if s.cases != nil {
		if err := s.cases.Raise(ctx, v); err != nil {
			return fmt.Errorf("file violation %s: %w", v.Key, err)
		}
	}
	if err := s.sp.AppendReserved(violations.AppendLine(nil, &v)); err != nil {
		return fmt.Errorf("store violation %s: %w", v.Key, err)
	}
	if !v.Resolved {
		s.raised.WithLabelValues(v.Type, v.Severity).Inc()
		s.log.Info("violation", "type", v.Type, "severity", v.Severity, "device", v.Device, "district", v.District, "summary", v.Summary)
	}
	return nil
}

// Fence hands a partition owner's fencing token to the case store.
func (s violationSink) Fence(ctx context.Context, f violations.Fence) error {
	if s.cases == nil {
		return nil
	}
	return s.cases.Fence(ctx, f)
}

func (s violationSink) Coverage(_ context.Context, c violations.CoverageReport) error {
	return s.sp.AppendReserved(violations.AppendCoverageLine(nil, &c))
}
