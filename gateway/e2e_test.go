package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
)

// TestEndToEnd publishes known readings of every kind over real MQTT and
// reads exactly those values, tags and timestamps back from InfluxDB.
func TestEndToEnd(t *testing.T) {
	h := newHarness(t)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond).UTC()
	ts := func(i int) string { return base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano) }

	bin := h.mustConnect("bin-1")
	publish(t, bin, topic("bin-1", "telemetry"), 1,
		fmt.Sprintf(`{"ts":%q,"fill_pct":42.5,"weight_kg":31.2,"temp_c":18,"tilt_deg":2,"lid_open":false,"battery_pct":88,"contamination_pct":4}`, ts(0)))
	publish(t, bin, topic("bin-1", "events"), 1, fmt.Sprintf(`{"ts":%q,"event":"emptied","fill_pct":3}`, ts(1)))

	truck := h.mustConnect("truck-1")
	// A buffered upload: ten past readings in one message, epoch milliseconds.
	var batch []string
	for i := 0; i < 10; i++ {
		batch = append(batch, fmt.Sprintf(`{"ts":%d,"lat":39.9%d,"lon":116.4%d,"speed_kmh":%d,"heading_deg":90,"hdop":0.9,"load_kg":%d,"ignition":true,"tipper":false,"fuel_pct":70}`,
			base.Add(time.Duration(10+i)*time.Second).UnixMilli(), i, i, 20+i, 1000+100*i))
	}
	publish(t, truck, topic("truck-1", "telemetry"), 1, "["+strings.Join(batch, ",")+"]")
	publish(t, truck, topic("truck-1", "events"), 1, fmt.Sprintf(`{"ts":%q,"event":"pickup","bin":"bin-1","lat":39.91,"lon":116.41}`, ts(2)))

	toilet := h.mustConnect("toilet-1")
	publish(t, toilet, topic("toilet-1", "telemetry"), 0,
		fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.42,"h2s_mgm3":0.004,"temp_c":21.5,"humidity_pct":55,"stalls_occupied":3,"people_in":1234,"water_l":5678.5,"power_kwh":99.25,"paper_pct":60,"soap_pct":35,"fault_code":0}`, ts(3)))

	sweeper := h.mustConnect("sweeper-1")
	publish(t, sweeper, topic("sweeper-1", "telemetry"), 1,
		fmt.Sprintf(`{"ts":%q,"lat":39.95,"lon":116.35,"speed_kmh":6.5,"heading_deg":180,"hdop":1.1,"brush_on":true,"vacuum_on":true,"water_pct":80}`, ts(4)))

	testenv.Eventually(t, 15*time.Second, "all readings in InfluxDB", func() bool {
		return h.influx.Count(t, "truck", "load_kg", "") == 10 && h.influx.Count(t, "toilet", "nh3_mgm3", "") == 1 &&
			h.influx.Count(t, "sweeper", "speed_kmh", "") == 1 && h.influx.Count(t, "bin", "fill_pct", "") == 1 &&
			h.influx.Count(t, "event", "count", "") >= 0 && len(h.influx.Rows(t, `SELECT * FROM "forever"."event"`)) == 2
	})

	num := func(v any) float64 {
		t.Helper()
		n, ok := v.(json.Number)
		if !ok {
			t.Fatalf("got %T %v, want a number", v, v)
		}
		f, _ := n.Float64()
		return f
	}
	nanos := func(v any) int64 {
		t.Helper()
		n, _ := v.(json.Number).Int64()
		return n
	}

	rows := h.influx.Rows(t, `SELECT * FROM "bin"`)
	if len(rows) != 1 {
		t.Fatalf("bin rows: got %d, want 1", len(rows))
	}
	r := rows[0]
	if got, want := nanos(r["time"]), base.UnixNano(); got != want {
		t.Errorf("bin time: got %d, want %d", got, want)
	}
	for field, want := range map[string]float64{"fill_pct": 42.5, "weight_kg": 31.2, "temp_c": 18, "tilt_deg": 2, "battery_pct": 88, "contamination_pct": 4} {
		if got := num(r[field]); got != want {
			t.Errorf("bin %s: got %v, want %v", field, got, want)
		}
	}
	if r["lid_open"] != false {
		t.Errorf("bin lid_open: got %v, want false", r["lid_open"])
	}
	for tag, want := range map[string]string{"device": "bin-1", "category": "kitchen", "contractor": "greenclean", "district": "north"} {
		if r[tag] != want {
			t.Errorf("bin tag %s: got %v, want %q", tag, r[tag], want)
		}
	}

	rows = h.influx.Rows(t, `SELECT * FROM "truck" ORDER BY time`)
	if len(rows) != 10 {
		t.Fatalf("truck rows: got %d, want 10", len(rows))
	}
	for i, r := range rows {
		if got, want := nanos(r["time"]), base.Add(time.Duration(10+i)*time.Second).UnixNano(); got != want {
			t.Errorf("truck[%d] time: got %d, want %d", i, got, want)
		}
		if got, want := num(r["load_kg"]), float64(1000+100*i); got != want {
			t.Errorf("truck[%d] load_kg: got %v, want %v", i, got, want)
		}
		if got, want := num(r["lat"]), 39.9+float64(i)/100; fmt.Sprintf("%.4f", got) != fmt.Sprintf("%.4f", want) {
			t.Errorf("truck[%d] lat: got %v, want %v", i, got, want)
		}
		if r["ignition"] != true || r["tipper"] != false || r["device"] != "truck-1" || r["category"] != "kitchen" {
			t.Errorf("truck[%d]: got %v", i, r)
		}
	}

	rows = h.influx.Rows(t, `SELECT * FROM "toilet"`)
	if len(rows) != 1 {
		t.Fatalf("toilet rows: got %d, want 1", len(rows))
	}
	r = rows[0]
	for field, want := range map[string]float64{"nh3_mgm3": 0.42, "h2s_mgm3": 0.004, "temp_c": 21.5, "humidity_pct": 55,
		"stalls_occupied": 3, "people_in": 1234, "water_l": 5678.5, "power_kwh": 99.25, "paper_pct": 60, "soap_pct": 35, "fault_code": 0} {
		if got := num(r[field]); got != want {
			t.Errorf("toilet %s: got %v, want %v", field, got, want)
		}
	}
	if _, has := r["category"]; has && r["category"] != nil {
		t.Errorf("toilet has a category tag: %v", r["category"])
	}

	rows = h.influx.Rows(t, `SELECT * FROM "sweeper"`)
	if len(rows) != 1 || rows[0]["brush_on"] != true || num(rows[0]["speed_kmh"]) != 6.5 || nanos(rows[0]["time"]) != base.Add(4*time.Minute).UnixNano() {
		t.Errorf("sweeper: got %v", rows)
	}

	rows = h.influx.Rows(t, `SELECT * FROM "forever"."event" ORDER BY time`)
	if len(rows) != 2 {
		t.Fatalf("events: got %d, want 2", len(rows))
	}
	if rows[0]["event"] != "emptied" || rows[0]["kind"] != "bin" || rows[0]["device"] != "bin-1" || num(rows[0]["fill_pct"]) != 3 {
		t.Errorf("emptied event: got %v", rows[0])
	}
	if rows[1]["event"] != "pickup" || rows[1]["bin"] != "bin-1" || rows[1]["device"] != "truck-1" || nanos(rows[1]["time"]) != base.Add(2*time.Minute).UnixNano() {
		t.Errorf("pickup event: got %v", rows[1])
	}

	// The readings are two hours old and judged at once: the gateway's own
	// points (violations, case events) are written beside them, and counted.
	// The counter moves once InfluxDB has answered, a moment after the
	// points can be read back.
	testenv.Eventually(t, 10*time.Second, "sanigate_points_written_total to count the 15 readings", func() bool {
		return h.metric("sanigate_points_written_total", nil) >= 15
	})
	if got := h.metric("sanigate_devices_connected", nil); got != 4 {
		t.Errorf("sanigate_devices_connected: got %v, want 4", got)
	}
}

// TestCompressedWrites stores readings through gzip-compressed write
// requests, which the gateway uses when InfluxDB is not on this machine.
func TestCompressedWrites(t *testing.T) {
	h := newHarness(t, func(c *fleet.Config) { c.InfluxDB.Compression = "gzip" })
	if !h.cfg.InfluxDB.Gzip() {
		t.Fatal("compression: gzip does not compress")
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	bin := h.mustConnect("bin-1")
	for i := range 5 {
		publish(t, bin, topic("bin-1", "telemetry"), 1,
			fmt.Sprintf(`{"ts":%q,"fill_pct":%d}`, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), 10+i))
	}
	testenv.Eventually(t, 15*time.Second, "five readings in InfluxDB", func() bool {
		return h.influx.Count(t, "bin", "fill_pct", "") == 5
	})
}
