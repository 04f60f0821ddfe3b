package gateway

import (
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
)

// completingReading finds the index in dumpingTrip of the reading that
// completes the dump's evidence: a calibration truck sends the trip one
// reading at a time and, after each, waits for the detectors to have taken
// it, then looks whether the dump was raised.
func completingReading(b *testing.B, h *harness, id string) int {
	c, err := h.connect(id, "pw-"+id)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Disconnect(50)
	base := h.metric("sanigate_violation_readings_total", nil)
	for j, p := range tripPoints(b, time.Now().Add(-20*time.Minute).Truncate(time.Second)) {
		c.Publish(topic(id, "telemetry"), 1, false, p).WaitTimeout(30 * time.Second)
		testenv.Eventually(b, 10*time.Second, "the reading at the detectors", func() bool {
			return h.metric("sanigate_violation_readings_total", nil) >= base+float64(j+1)
		})
		time.Sleep(20 * time.Millisecond) // the shard finishes the reading it took
		if h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping"}) > 0 {
			return j
		}
	}
	b.Fatal("the calibration trip raised nothing")
	return 0
}

// BenchmarkDetectionLatency measures, for b.N trucks each sending a trip
// with a dump at a farm, the time from the PUBACK of the reading that
// completes the evidence to the case stored and to its webhook delivered:
// live (one reading a message, the trip ending now) and 3 hours late (the
// trip in one upload, the completing reading within it). Run with:
// go test ./gateway -run '^$' -bench DetectionLatency -benchtime 20x
func BenchmarkDetectionLatency(b *testing.B) {
	for _, mode := range []string{"live", "3h-late"} {
		b.Run(mode, func(b *testing.B) { detectionLatency(b, mode == "live") })
	}
}

func detectionLatency(b *testing.B, live bool) {
	n := b.N
	var mu sync.Mutex
	hooked := map[string]time.Time{}
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
		if _, ok := hooked[m.Case.Device]; !ok && m.Event == "dispatched" {
			hooked[m.Case.Device] = time.Now()
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	var trucks strings.Builder
	for i := -1; i < n; i++ { // lat--1 calibrates
		h, _ := fleet.HashPassword(fmt.Sprintf("pw-lat-%d", i), 4)
		fmt.Fprintf(&trucks, "  - {id: lat-%d, kind: truck, category: kitchen, capacity_kg: 8000, password_hash: %q}\n", i, h)
	}
	sections := demoPlaces(b) + fmt.Sprintf(`cases:
  units:
    - {id: enforcement-north, name: North enforcement bureau, webhook_url: %q, secret: bench-secret}
  dispatch: {default_unit: enforcement-north}
  outbox: {retry_min: 100ms, retry_max: 1s, poll: 20ms}
`, rcv.URL)
	h := newHarnessYAML(b, trucks.String(), sections)
	completing := completingReading(b, h, "lat--1")
	b.Logf("the dump is complete with reading %d of the trip", completing)
	stored := map[string]time.Time{}
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() { // the case stored: look at the store every 5 ms
		defer close(watched)
		for len(stored) < n+1 {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for dev := range dumpingCases(b, h) {
				if _, ok := stored[dev]; !ok {
					stored[dev] = time.Now()
				}
			}
		}
	}()
	acked := make([]time.Time, n)
	now := time.Now().Truncate(time.Second)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("lat-%d", i)
			c, err := h.connect(id, "pw-"+id)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Disconnect(50)
			pts := tripPoints(b, now.Add(-20*time.Minute))
			if !live {
				pts = tripPoints(b, now.Add(-3*time.Hour-20*time.Minute))
				c.Publish(topic(id, "telemetry"), 1, false, "["+strings.Join(pts[:completing], ",")+"]").WaitTimeout(30 * time.Second)
				pts = []string{"[" + strings.Join(pts[completing:], ",") + "]"}
			}
			for j, p := range pts {
				c.Publish(topic(id, "telemetry"), 1, false, p).WaitTimeout(30 * time.Second)
				if (live && j == completing) || (!live && j == 0) {
					acked[i] = time.Now()
				}
			}
		}(i)
	}
	wg.Wait()
	testenv.Eventually(b, 60*time.Second, "every webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hooked) == n+1
	})
	b.StopTimer()
	close(stopWatch)
	<-watched
	report := func(name string, at map[string]time.Time) {
		var lat []time.Duration
		for i := 0; i < n; i++ {
			if t, ok := at[fmt.Sprintf("lat-%d", i)]; ok {
				lat = append(lat, t.Sub(acked[i]))
			}
		}
		if len(lat) == 0 {
			return
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(lat[(len(lat)-1)*99/100].Microseconds())/1000, name+"-p99-ms")
	}
	report("stored", stored)
	mu.Lock()
	report("webhook", hooked)
	mu.Unlock()
}
