package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// A reading published twice (as a QoS 1 resend does) is one point of one
// series in InfluxDB: the repeated GPS fix is placed like the first (same
// district and site tags), not marked as filtered, and counted.
func TestDuplicateReadingStoredOnce(t *testing.T) {
	sections := demoPlaces(t)
	h := newHarnessYAML(t, "", sections)
	truck := h.mustConnect("truck-1")
	bin := h.mustConnect("bin-1")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	fix := func(at time.Duration, load int) string {
		// inside the kitchen-waste plant: the reading has a site tag
		return fmt.Sprintf(`{"ts":%d,"lat":39.8615,"lon":116.3115,"speed_kmh":0,"hdop":0.8,"load_kg":%d}`,
			base.Add(at).UnixMilli(), load)
	}
	fill := fmt.Sprintf(`{"ts":%d,"fill_pct":55}`, base.UnixMilli())
	for _, m := range []struct{ c, topic, payload string }{
		{"truck", topic("truck-1", "telemetry"), fix(0, 3000)},
		{"truck", topic("truck-1", "telemetry"), fix(0, 3000)}, // the resend
		{"bin", topic("bin-1", "telemetry"), fill},
		{"bin", topic("bin-1", "telemetry"), fill},
		{"truck", topic("truck-1", "telemetry"), fix(10*time.Second, 2990)},
	} {
		c := truck
		if m.c == "bin" {
			c = bin
		}
		publish(t, c, m.topic, 1, m.payload)
	}
	// The last reading is stored after the others (one spool, in order).
	testenv.Eventually(t, 10*time.Second, "the last truck reading", func() bool {
		return h.influx.Count(t, "truck", "load_kg", `"load_kg" = 2990`) == 1
	})
	testenv.Eventually(t, 10*time.Second, "the bin reading", func() bool { return h.influx.Count(t, "bin", "fill_pct", "") >= 1 })
	rows := h.influx.Rows(t, `SELECT * FROM "truck" ORDER BY time`)
	if len(rows) != 2 {
		t.Fatalf("got %d truck rows, want 2 (one per reading): %v", len(rows), rows)
	}
	for i, r := range rows {
		if r["site"] != "kw-plant" || r["district"] != "south" || r["gps_filter"] != nil {
			t.Errorf("row %d: site %v district %v gps_filter %v, want kw-plant, south, none", i, r["site"], r["district"], r["gps_filter"])
		}
	}
	series := h.influx.Rows(t, `SHOW SERIES FROM "truck"`)
	if len(series) != 1 {
		t.Errorf("got %d truck series, want 1: %v", len(series), series)
	}
	if n := h.influx.Count(t, "bin", "fill_pct", ""); n != 1 {
		t.Errorf("got %d bin points, want 1", n)
	}
	if got := h.metric("sanigate_gps_fixes_filtered_total", map[string]string{"reason": "duplicate"}); got != 1 {
		t.Errorf("duplicate fixes counted: got %v, want 1", got)
	}
}
