package cases

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus series. The open and overdue gauges
// are read from the store at scrape time, so every gateway sharing a store
// reports the same figures.
type metrics struct {
	s             *Service
	openDesc      *prometheus.Desc
	overdueDesc   *prometheus.Desc
	notifications *prometheus.CounterVec
	transitions   *prometheus.CounterVec
	merged        prometheus.Counter
	replayed      prometheus.Counter
	fenced        prometheus.Counter
	raiseErrors   prometheus.Counter
	pointErrors   prometheus.Counter
	scrapeErrors  prometheus.Counter

	commandsSent       *prometheus.CounterVec
	commandsExpired    prometheus.Counter
	commandAcksRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Service) (*metrics, error) {
	m := &metrics{
		s: s,
		openDesc: prometheus.NewDesc("sanigate_cases_open", "Open cases by violation type and district.",
			[]string{"type", "district"}, nil),
		overdueDesc: prometheus.NewDesc("sanigate_cases_overdue", "Open cases that missed a deadline, by violation type and district.",
			[]string{"type", "district"}, nil),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sanigate_case_notification_attempts_total",
			Help: "Attempts to deliver case notifications, by channel and result."}, []string{"channel", "result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sanigate_case_events_total",
			Help: "Case lifecycle events, by action."}, []string{"action"}),
		merged: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_case_repeats_merged_total",
			Help: "Repeated violations merged into their open case."}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_case_replays_ignored_total",
			Help: "Violations raised again after their case was closed (a detector's replay), left out."}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_case_fenced_total",
			Help: "Violations refused because their detector's fencing token was stale (it had lost its partition)."}),
		raiseErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_case_raise_errors_total",
			Help: "Violations that could not be filed or merged."}),
		pointErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_case_point_errors_total",
			Help: "Case event and KPI points the point writer refused."}),
		scrapeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_case_gauge_errors_total",
			Help: "Scrapes whose case gauges could not be read from the store."}),
		commandsSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sanigate_device_commands_sent_total",
			Help: "Commands to devices stored and handed to the broker, by type."}, []string{"type"}),
		commandsExpired: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_device_commands_expired_total",
			Help: "Commands to devices that expired without an answer."}),
		commandAcksRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "sanigate_device_command_acks_refused_total",
			Help: "Command answers from devices that named no open command of theirs."}),
	}
	for _, c := range []prometheus.Collector{m, m.notifications, m.transitions, m.merged, m.replayed, m.fenced, m.raiseErrors, m.pointErrors, m.scrapeErrors,
		m.commandsSent, m.commandsExpired, m.commandAcksRefused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Describe implements prometheus.Collector for the gauges.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.openDesc
	ch <- m.overdueDesc
}

// Collect implements prometheus.Collector: one grouped query over the open cases.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := m.s.st.query(ctx, m.s.st.db, `SELECT type, district, COUNT(*), SUM(overdue) FROM cases WHERE is_open = 1 GROUP BY type, district`)
	if err != nil {
		m.scrapeErrors.Inc()
		return
	}
	defer rows.Close()
	for rows.Next() {
		var typ, district string
		var open, overdue int64
		if err := rows.Scan(&typ, &district, &open, &overdue); err != nil {
			m.scrapeErrors.Inc()
			return
		}
		ch <- prometheus.MustNewConstMetric(m.openDesc, prometheus.GaugeValue, float64(open), typ, district)
		ch <- prometheus.MustNewConstMetric(m.overdueDesc, prometheus.GaugeValue, float64(overdue), typ, district)
	}
}
