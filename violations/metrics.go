package violations

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the detectors' figures on /metrics.
type metrics struct {
	raised      *prometheus.CounterVec
	readings    prometheus.Counter
	late        *prometheus.CounterVec
	badRecords  prometheus.Counter
	sinkErrors  prometheus.Counter
	panics      prometheus.Counter
	checkpoints prometheus.Counter
	watermark   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_violations_raised_total", Help: "Violations handed to the sink, by type, severity and whether resolved.",
		}, []string{"type", "severity", "resolved"}),
		readings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_readings_total", Help: "Readings the detectors received.",
		}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_violation_late_readings_total", Help: "Readings that came later than the allowed lateness and were left out of detection, by kind.",
		}, []string{"kind"}),
		badRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_bad_records_total", Help: "Spool records the detectors could not read.",
		}),
		sinkErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_sink_errors_total", Help: "Failed attempts to hand a violation to the sink (each is retried).",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_panics_total", Help: "Detector panics recovered.",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_checkpoints_total", Help: "Detector snapshots saved with the cursor committed.",
		}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sanigate_violation_watermark_seconds", Help: "Event time (Unix seconds) up to which time-window rules have run.",
		}),
	}
	if reg != nil {
		m.raised = register(reg, m.raised)
		m.readings = register(reg, m.readings)
		m.late = register(reg, m.late)
		m.badRecords = register(reg, m.badRecords)
		m.sinkErrors = register(reg, m.sinkErrors)
		m.panics = register(reg, m.panics)
		m.checkpoints = register(reg, m.checkpoints)
		m.watermark = register(reg, m.watermark)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (a second engine on the same registry shares the counters).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
