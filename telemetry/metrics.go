package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingest and write figures of /metrics.
type Metrics struct {
	MessagesAccepted *prometheus.CounterVec
	MessagesRejected *prometheus.CounterVec
	ReadingsAccepted *prometheus.CounterVec
	Backpressured    *prometheus.CounterVec
	GPSFiltered      *prometheus.CounterVec

	PointsWritten prometheus.Counter
	WriteErrors   *prometheus.CounterVec
	WriteLatency  prometheus.Histogram
	WriteBatches  prometheus.Counter
	WriteRetries  prometheus.Counter
	DeadLetters   prometheus.Counter
}

// NewMetrics creates and registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		MessagesAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_messages_accepted_total", Help: "Device messages accepted, by kind and transport.",
		}, []string{"kind", "transport"}),
		MessagesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_messages_rejected_total", Help: "Device messages refused and not stored, by reason and kind.",
		}, []string{"reason", "kind"}),
		ReadingsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_readings_accepted_total", Help: "Readings and events accepted into the spool, by kind.",
		}, []string{"kind"}),
		Backpressured: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_messages_backpressured_total", Help: "Messages pushed back to the sender because the spool was full, by transport.",
		}, []string{"transport"}),
		GPSFiltered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_gps_fixes_filtered_total", Help: "GPS fixes kept out of placing and detection, by reason (invalid, zero, duplicate, hdop, jump, future).",
		}, []string{"reason"}),
		PointsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_points_written_total", Help: "Points InfluxDB accepted.",
		}),
		WriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_write_errors_total", Help: "Failed InfluxDB write requests, by class (network, server, throttled, auth, rejected).",
		}, []string{"class"}),
		WriteLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sanigate_write_duration_seconds", Help: "Duration of InfluxDB write requests.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		WriteBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_writer_batches_total", Help: "Batches the writer delivered to InfluxDB.",
		}),
		WriteRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_writer_retries_total", Help: "Write attempts repeated after a retryable failure.",
		}),
		DeadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_dead_letters_total", Help: "Lines InfluxDB refused, written to the dead-letter file.",
		}),
	}
	for _, c := range []prometheus.Collector{m.MessagesAccepted, m.MessagesRejected, m.ReadingsAccepted, m.Backpressured, m.GPSFiltered,
		m.PointsWritten, m.WriteErrors, m.WriteLatency, m.WriteBatches, m.WriteRetries, m.DeadLetters} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{ReasonMalformed, ReasonUnknownField, ReasonWrongType, ReasonOutOfRange, ReasonNonFinite,
		ReasonBadTimestamp, ReasonFutureTimestamp, ReasonTooOld, ReasonTooMany, ReasonEmpty, ReasonUnknownEvent} {
		m.MessagesRejected.WithLabelValues(r, "")
	}
	for _, c := range []string{"network", "server", "throttled", "auth", "rejected"} {
		m.WriteErrors.WithLabelValues(c)
	}
	return m, nil
}
