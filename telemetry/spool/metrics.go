package spool

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exposes a spool's state, its consumers' lag and the backpressure
// it causes, in Prometheus. Its methods are safe for concurrent use.
type Metrics struct {
	appends      prometheus.Counter
	fsyncs       prometheus.Counter
	fsyncLatency prometheus.Histogram
	fullSeconds  prometheus.Counter

	mu        sync.Mutex
	sp        *Spool
	consumers []*Consumer
	fullSince time.Time
}

// NewMetrics registers the spool's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		appends: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_spool_appends_total", Help: "Records (device messages, violations, case points) appended to the spool."}),
		fsyncs:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_spool_fsyncs_total", Help: "Group-commit fsyncs of the spool's segments."}),
		fsyncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sanigate_spool_fsync_duration_seconds", Help: "Duration of spool fsyncs.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		fullSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_backpressure_seconds_total", Help: "Time the spool spent full, pushing back on publishers (accrued every few seconds).",
		}),
	}
	reg.MustRegister(m.appends, m.fsyncs, m.fsyncLatency, m.fullSeconds)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanigate_spool_bytes", Help: "Bytes held in the spool."},
			func() float64 { return float64(m.stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanigate_spool_records", Help: "Records held in the spool (device messages, violations, case points)."},
			func() float64 { return float64(m.stats().Records) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanigate_spool_max_bytes", Help: "The spool's quota."},
			func() float64 { return float64(m.stats().MaxBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanigate_spool_segments", Help: "Segment files in the spool."},
			func() float64 { return float64(m.stats().Segments) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sanigate_spool_full", Help: "1 while the spool is full and publishers are pushed back."},
			func() float64 {
				if m.full() {
					return 1
				}
				return 0
			}),
		consumerCollector{m},
	)
	return m
}

// Watch makes the metrics report sp and its consumers c.
func (m *Metrics) Watch(sp *Spool, c ...*Consumer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sp = sp
	m.consumers = append(m.consumers, c...)
}

func (m *Metrics) stats() Stats {
	m.mu.Lock()
	sp := m.sp
	m.mu.Unlock()
	if sp == nil {
		return Stats{}
	}
	return sp.Stats()
}

func (m *Metrics) full() bool {
	m.mu.Lock()
	sp := m.sp
	m.mu.Unlock()
	return sp != nil && sp.Full()
}

// ObserveSync records one group commit; it is an Options.OnSync hook.
func (m *Metrics) ObserveSync(d time.Duration, _ int) {
	m.fsyncs.Inc()
	m.fsyncLatency.Observe(d.Seconds())
}

// Update accrues the time spent full; call it every few seconds, and when an
// append is refused as full.
func (m *Metrics) Update() {
	full := m.full()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if !m.fullSince.IsZero() {
		m.fullSeconds.Add(now.Sub(m.fullSince).Seconds())
		m.fullSince = time.Time{}
	}
	if full {
		m.fullSince = now
	}
}

type consumerCollector struct{ m *Metrics }

var (
	lagDesc = prometheus.NewDesc("sanigate_spool_consumer_lag_bytes", "Synced spool bytes a consumer has not committed.", []string{"consumer"}, nil)
	ageDesc = prometheus.NewDesc("sanigate_spool_oldest_unsent_age_seconds", "Age of the oldest record a consumer has not committed.", []string{"consumer"}, nil)
)

func (c consumerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc; ch <- ageDesc }

func (c consumerCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	cs := append([]*Consumer(nil), c.m.consumers...)
	c.m.mu.Unlock()
	for _, cons := range cs {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(cons.Lag()), cons.Name())
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, cons.OldestAge().Seconds(), cons.Name())
	}
}

// CountAppend counts one record appended.
func (m *Metrics) CountAppend() { m.appends.Inc() }
