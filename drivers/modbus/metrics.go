package modbus

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the poller's Prometheus collectors, labelled by device.
type metrics struct {
	duration    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	requests    *prometheus.CounterVec
	dials       *prometheus.CounterVec
	polls       *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	emitErrors  *prometheus.CounterVec
	// loopRestarts counts restarts of a device's polling loop.
	loopRestarts *prometheus.CounterVec
	lateness     prometheus.Histogram
}

// Results of a poll, the result label of sanigate_modbus_polls_total.
const (
	resultOK      = "ok"      // every request answered
	resultPartial = "partial" // some requests answered with an exception
	resultFailed  = "failed"  // no reading
	resultBackoff = "backoff" // skipped: waiting to redial
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sanigate_modbus_poll_duration_seconds",
			Help:    "Time taken by one poll of a Modbus device, every request included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"device"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_modbus_errors_total",
			Help: "Failed Modbus requests and values, by device and kind (timeout, io, mismatch, busy, exception, decode).",
		}, []string{"device", "kind"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sanigate_modbus_last_success_timestamp_seconds",
			Help: "Unix time of the last poll a Modbus device answered.",
		}, []string{"device"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_modbus_requests_total",
			Help: "Modbus read requests sent, by device.",
		}, []string{"device"}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_modbus_dials_total",
			Help: "Connections opened to a Modbus device.",
		}, []string{"device"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_modbus_polls_total",
			Help: "Polls of a Modbus device, by result (ok, partial, failed, backoff).",
		}, []string{"device", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_modbus_readings_dropped_total",
			Help: "Readings replaced by a newer one while the pipeline pushed back.",
		}, []string{"device"}),
		emitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_modbus_emit_errors_total",
			Help: "Readings the pipeline refused, by device; the newest is retried.",
		}, []string{"device"}),
		loopRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_modbus_loop_restarts_total",
			Help: "Restarts of a Modbus device's polling loop after it failed, by device and reason (panic, error).",
		}, []string{"device", "reason"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sanigate_modbus_poll_lateness_seconds",
			Help:    "How late polls start after their scheduled time.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors, m.lastSuccess, m.requests, m.dials, m.polls, m.dropped, m.emitErrors, m.loopRestarts, m.lateness} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// device pre-creates a device's series so that dashboards see zeros, not gaps.
func (m *metrics) device(id string) {
	for _, k := range ErrorKinds {
		m.errors.WithLabelValues(id, string(k))
	}
	for _, r := range []string{resultOK, resultPartial, resultFailed, resultBackoff} {
		m.polls.WithLabelValues(id, r)
	}
	m.requests.WithLabelValues(id)
	m.dials.WithLabelValues(id)
	m.dropped.WithLabelValues(id)
	m.emitErrors.WithLabelValues(id)
}
