package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"

	"github.com/sanigate/sanigate/internal/testenv"
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
				QoS: qos, Window: 2, Duration: max(time.Duration(b.N)*50*time.Microsecond, 2*time.Second),
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

// BenchmarkPublishToWebhook measures, for b.N trucks each uploading a trip
// with an illegal dump at a farm at once, the time from the upload's PUBACK
// to the case's signed webhook arriving at a real receiver. Run with:
// go test ./gateway -run '^$' -bench PublishToWebhook -benchtime 50x
func BenchmarkPublishToWebhook(b *testing.B) {
	n := b.N
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Event string `json:"event"`
			Case  struct {
				Device string `json:"device"`
			} `json:"case"`
		}
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		if _, ok := arrived[m.Case.Device]; !ok && m.Event == "dispatched" {
			arrived[m.Case.Device] = time.Now()
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	var trucks strings.Builder
	for i := 0; i < n; i++ {
		h, _ := fleet.HashPassword(fmt.Sprintf("pw-trk-%d", i), 4)
		fmt.Fprintf(&trucks, "  - {id: trk-%d, kind: truck, category: kitchen, capacity_kg: 8000, password_hash: %q}\n", i, h)
	}
	sections := demoPlaces(b) + fmt.Sprintf(`cases:
  units:
    - {id: enforcement-north, name: North enforcement bureau, webhook_url: %q, secret: bench-secret}
  dispatch: {default_unit: enforcement-north}
  outbox: {retry_min: 100ms, retry_max: 1s, poll: 100ms}
`, rcv.URL)
	h := newHarnessYAML(b, trucks.String(), sections)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	acked := make([]time.Time, n)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := h.connect(fmt.Sprintf("trk-%d", i), fmt.Sprintf("pw-trk-%d", i))
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Disconnect(50)
			tok := c.Publish(topic(fmt.Sprintf("trk-%d", i), "telemetry"), 1, false, dumpingTrip(start.Add(time.Duration(i)*time.Second)))
			tok.WaitTimeout(30 * time.Second)
			acked[i] = time.Now()
		}(i)
	}
	wg.Wait()
	testenv.Eventually(b, 120*time.Second, "every webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(arrived) == n
	})
	b.StopTimer()
	var lat []time.Duration
	for i := 0; i < n; i++ {
		lat = append(lat, arrived[fmt.Sprintf("trk-%d", i)].Sub(acked[i]))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)-1)*99/100].Milliseconds()), "p99-ms")
}
