package cluster

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// forwardMetrics are the forwarder's figures; its lag in bytes is exported
// as a gauge read from the spool consumer.
type forwardMetrics struct {
	forwarded  prometheus.Counter
	duplicates prometheus.Counter
	errors     prometheus.Counter
	ackLatency prometheus.Histogram
	delay      prometheus.Histogram
}

func newForwardMetrics(reg prometheus.Registerer, f *Forwarder) (*forwardMetrics, error) {
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 18)
	m := &forwardMetrics{
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_cluster_forwarded_total", Help: "Readings the stream acknowledged.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_cluster_forward_duplicates_total", Help: "Readings the stream already had (sent again after a failure or a restart).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_cluster_forward_errors_total", Help: "Failed forwarding attempts (each sends again from the cursor).",
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sanigate_cluster_forward_ack_seconds", Help: "Time from publishing a reading to the stream's acknowledgement.", Buckets: buckets,
		}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sanigate_cluster_forward_delay_seconds", Help: "Time from appending a reading to the spool to the stream's acknowledgement.", Buckets: buckets,
		}),
	}
	if reg == nil {
		return m, nil
	}
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sanigate_cluster_connected", Help: "1 while the forwarder is connected to a NATS server.",
	}, func() float64 {
		if f.Connected() {
			return 1
		}
		return 0
	})
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sanigate_cluster_forward_lag_bytes", Help: "Spool bytes not yet acknowledged by the stream.",
	}, func() float64 { return float64(f.cons.Lag()) })
	for _, c := range []prometheus.Collector{m.forwarded, m.duplicates, m.errors, m.ackLatency, m.delay, connected, lag} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("cluster: register metrics"), err)
		}
	}
	return m, nil
}
