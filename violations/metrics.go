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
	clock       prometheus.Gauge
	derived     prometheus.Counter
	duplicates  prometheus.Counter
	marks       prometheus.Counter
	reruns      prometheus.Counter
	withdrawn   prometheus.Counter
	// rerunReadings counts the readings re-runs went through again.
	rerunReadings prometheus.Counter
	rerunSeconds  prometheus.Histogram
	stateBytes    prometheus.Counter
	// Read-backs of late readings beyond memory (readback.go).
	readbacks  prometheus.Counter
	rbReadings prometheus.Counter
	rbSeconds  prometheus.Histogram
	rbQueued   prometheus.Gauge
	rbFull     prometheus.Counter
	rbErrors   prometheus.Counter
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
			Name: "sanigate_violation_late_readings_total", Help: "Readings older than their device's replay span, left out of detection, by kind.",
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
		clock: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sanigate_violation_clock_seconds", Help: "Time (Unix seconds) the detectors last ticked silent devices to.",
		}),
		derived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_derived_records_total", Help: "Spool records the detectors passed over as not device readings (the gateway's own).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_duplicate_readings_total", Help: "Readings the detectors had already judged (same device, time and values), passed over.",
		}),
		marks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_replay_marks_total", Help: "Device states marked for re-runs.",
		}),
		reruns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_reruns_total", Help: "Re-runs of a device's detectors over late readings.",
		}),
		withdrawn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_withdrawn_total", Help: "Violations a re-run no longer supported, withdrawn.",
		}),
		rerunReadings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_rerun_readings_total", Help: "Readings handled again by re-runs.",
		}),
		rerunSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sanigate_violation_rerun_seconds", Help: "Time one re-run took.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		stateBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_state_bytes_total", Help: "Bytes written to the detectors' state log.",
		}),
		readbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_readbacks_total", Help: "Re-runs of a device over late readings older than its memory, from its history read back.",
		}),
		rbReadings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_readback_readings_total", Help: "Stored readings read back for re-runs.",
		}),
		rbSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sanigate_violation_readback_seconds", Help: "Time one read-back took: the queries and the re-run.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		rbQueued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sanigate_violation_readback_queued", Help: "Devices in the read-back queue.",
		}),
		rbFull: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_readback_queue_full_total", Help: "Times a device found the read-back queue full; it waits in its shard and is offered again.",
		}),
		rbErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_violation_readback_errors_total", Help: "Failed read-backs (InfluxDB unreachable, the writer behind), each retried.",
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
		m.clock = register(reg, m.clock)
		m.derived = register(reg, m.derived)
		m.duplicates = register(reg, m.duplicates)
		m.marks = register(reg, m.marks)
		m.reruns = register(reg, m.reruns)
		m.withdrawn = register(reg, m.withdrawn)
		m.rerunReadings = register(reg, m.rerunReadings)
		m.rerunSeconds = register(reg, m.rerunSeconds)
		m.stateBytes = register(reg, m.stateBytes)
		m.readbacks = register(reg, m.readbacks)
		m.rbReadings = register(reg, m.rbReadings)
		m.rbSeconds = register(reg, m.rbSeconds)
		m.rbQueued = register(reg, m.rbQueued)
		m.rbFull = register(reg, m.rbFull)
		m.rbErrors = register(reg, m.rbErrors)
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
