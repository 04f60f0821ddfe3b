package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sanigate/sanigate/simulators"
)

// BenchmarkIngest publishes QoS 1 and QoS 0 bin readings from 200 devices
// through the real broker and spool, with InfluxDB writing behind; b.N is the
// number of messages. Run with: go test ./gateway -run '^$' -bench Ingest -benchtime 100000x
func BenchmarkIngest(b *testing.B) {
	for _, qos := range []byte{1, 0} {
		b.Run(fmt.Sprintf("qos%d", qos), func(b *testing.B) {
			h := newHarnessYAML(b, loadDevicesNamed(b, 200), "")
			ids := make([]string, 200)
			for i := range ids {
				ids[i] = fmt.Sprintf("load-%04d", i+1)
			}
			b.ResetTimer()
			start := time.Now()
			res, err := simulators.Load(context.Background(), simulators.LoadOptions{
				Broker: h.g.MQTTAddr(), Devices: ids, Password: func(id string) string { return "pw-" + id },
				QoS: qos, Window: 2, Duration: time.Duration(b.N) * 50 * time.Microsecond,
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.Rate(), "msgs/s")
			if qos == 1 {
				b.ReportMetric(float64(res.Percentile(50).Microseconds()), "p50-µs")
				b.ReportMetric(float64(res.Percentile(99).Microseconds()), "p99-µs")
			}
			_ = start
		})
	}
}

func loadDevicesNamed(t testing.TB, n int) string {
	t.Helper()
	s := ""
	for i := 1; i <= n; i++ {
		s += loadDevice(t, fmt.Sprintf("load-%04d", i))
	}
	return s
}
