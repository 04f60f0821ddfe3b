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

// violationSink stores what the detectors raise in InfluxDB (through the
// spool, so an outage loses nothing) and files it as a case.
type violationSink struct {
	sp     *spool.Spool
	cases  *cases.Service
	log    *slog.Logger
	raised *prometheus.CounterVec
}

func (s violationSink) Raise(ctx context.Context, v violations.Violation) error {
	if err := s.sp.AppendReserved(violations.AppendLine(nil, &v)); err != nil {
		return fmt.Errorf("store violation %s: %w", v.Key, err)
	}
	if s.cases != nil {
		if err := s.cases.Raise(ctx, v); err != nil {
			return fmt.Errorf("file violation %s: %w", v.Key, err)
		}
	}
	if !v.Resolved {
		s.raised.WithLabelValues(v.Type, v.Severity).Inc()
		s.log.Info("violation", "type", v.Type, "severity", v.Severity, "device", v.Device, "district", v.District, "summary", v.Summary)
	}
	return nil
}

func (s violationSink) Coverage(_ context.Context, c violations.CoverageReport) error {
	return s.sp.AppendReserved(violations.AppendCoverageLine(nil, &c))
}
