package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/internal/natstest"
	"github.com/sanigate/sanigate/telemetry"
)

// BenchmarkForward forwards b.N spooled readings of 200 devices to a stream
// on one node, and replicated on three, and reports readings per second and the time
// from publish to acknowledgement.
func BenchmarkForward(b *testing.B) {
	for _, c := range []struct{ nodes, window int }{{1, 1024}, {3, 256}, {3, 1024}} {
		window := c.window
		b.Run(fmt.Sprintf("R%d/window=%d", c.nodes, window), func(b *testing.B) {
			nc := natstest.Start(b, c.nodes)
			_, js := nc.Connect(b)
			sp := openSpool(b, b.TempDir())
			base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
			for i := range b.N {
				r := telemetry.Reading{Device: fmt.Sprintf("bin-%03d", i%200), Kind: telemetry.KindBin, Time: base.Add(time.Duration(i) * time.Millisecond),
					Fields: []telemetry.Field{{Name: "fill_pct", Type: telemetry.Float, Num: float64(i % 100)}, {Name: "battery_v", Type: telemetry.Float, Num: 3.61}}}
				if err := sp.Append(telemetry.AppendLine(nil, &r), false); err != nil {
					b.Fatal(err)
				}
			}
			if err := sp.Append(telemetry.AppendLine(nil, &telemetry.Reading{Device: "bin-last", Kind: telemetry.KindBin, Time: base,
				Fields: []telemetry.Field{{Name: "fill_pct", Type: telemetry.Float}}}), true); err != nil {
				b.Fatal(err)
			}
			cons, err := sp.Consumer("cluster")
			if err != nil {
				b.Fatal(err)
			}
			so := cluster.StreamOptions{Name: "B", Replicas: c.nodes}.WithDefaults()
			if _, err := cluster.EnsureStream(b.Context(), js, so); err != nil {
				b.Fatal(err)
			}
			natstest.WaitStream(b, js, "B")
			b.ResetTimer()
			start := time.Now()
			r := startForwarderWindow(b, cons, nc.URLList(), so, window)
			waitCaughtUp(b, cons)
			el := time.Since(start)
			b.StopTimer()
			r.stop()
			b.ReportMetric(float64(b.N)/el.Seconds(), "readings/s")
			b.ReportMetric(value(b, r.reg, "sanigate_cluster_forward_errors_total"), "errors")
		})
	}
}
