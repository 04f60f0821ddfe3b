package broker

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/telemetry"
)

type metrics struct {
	connected    prometheus.Gauge
	authFailures *prometheus.CounterVec
	aclDenied    prometheus.Counter
	panics       *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	negativeAcks *prometheus.CounterVec
	// loginsThrottled counts CONNECTs refused unverified while failed
	// logins keep their device id or source address closed.
	loginsThrottled *prometheus.CounterVec

	logs *telemetry.LogLimiter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sanigate_devices_connected", Help: "Devices connected to the embedded MQTT broker.",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_mqtt_auth_failures_total", Help: "MQTT connections refused at CONNECT, by reason.",
		}, []string{"reason"}),
		aclDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_mqtt_acl_denied_total", Help: "Publishes and subscriptions refused by the topic ACL.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_mqtt_panics_recovered_total", Help: "Panics recovered in MQTT hooks and connection goroutines.",
		}, []string{"where"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_mqtt_packets_rejected_total", Help: "MQTT packets refused by the broker before decoding, by reason.",
		}, []string{"reason"}),
		negativeAcks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_mqtt_negative_acks_total", Help: "MQTT 5 PUBACKs with a failure reason code, by reason.",
		}, []string{"reason"}),
		loginsThrottled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_mqtt_logins_throttled_total", Help: "MQTT CONNECTs refused without verification after repeated failed logins, by what was throttled (device or address).",
		}, []string{"by"}),
		logs: telemetry.NewLogLimiter(10 * time.Second),
	}
	for _, c := range []prometheus.Collector{m.connected, m.authFailures, m.aclDenied, m.panics, m.rejected, m.negativeAcks, m.loginsThrottled} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.rejected.WithLabelValues("too_large")
	return m, nil
}

// logLimited logs at most one line per key per 10 seconds at warning level,
// saying how many were suppressed in between: a flood of bad clients must
// not flood the log.
func (b *Broker) logLimited(key, msg string, args ...any) {
	b.logAt(slog.LevelWarn, key, msg, args...)
}

// logLimitedError is logLimited at error level.
func (b *Broker) logLimitedError(key, msg string, args ...any) {
	b.logAt(slog.LevelError, key, msg, args...)
}

func (b *Broker) logAt(level slog.Level, key, msg string, args ...any) {
	skipped, ok := b.metrics.logs.Allow(key)
	if !ok {
		return
	}
	if skipped > 0 {
		args = append(args, "suppressed", skipped)
	}
	b.log.Log(context.Background(), level, msg, args...)
}
