package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
)

// Readings are placed on the city's map: district and site tags come from
// the position; a fix the GPS filters refuse does not place the reading, is
// marked with the reason and counted.
func TestReadingsPlacedOnTheMap(t *testing.T) {
	sections := demoPlaces(t)
	h := newHarnessYAML(t, "", sections)
	c := h.mustConnect("truck-1")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	msg := func(at time.Duration, lat, lon float64) string {
		return fmt.Sprintf(`{"ts":%d,"lat":%g,"lon":%g,"speed_kmh":20,"hdop":0.8,"load_kg":1000}`, base.Add(at).UnixMilli(), lat, lon)
	}
	// North district; 40 minutes later inside the kitchen-waste plant
	// (south); then a (0,0) fix; then a jump across the city in 10 seconds.
	for _, m := range []string{
		msg(0, 39.975, 116.35),
		msg(40*time.Minute, 39.8615, 116.3115),
		msg(40*time.Minute+10*time.Second, 0, 0),
		msg(40*time.Minute+20*time.Second, 39.99, 116.49),
	} {
		publish(t, c, topic("truck-1", "telemetry"), 1, m)
	}
	testenv.Eventually(t, 10*time.Second, "four truck readings", func() bool { return h.influx.Count(t, "truck", "load_kg", "") == 4 })
	rows := h.influx.Rows(t, `SELECT * FROM "truck" ORDER BY time`)
	if rows[0]["district"] != "north" {
		t.Errorf("reading 0: district %v, want north", rows[0]["district"])
	}
	if rows[1]["district"] != "south" || rows[1]["site"] != "kw-plant" {
		t.Errorf("reading 1: district %v site %v, want south, kw-plant", rows[1]["district"], rows[1]["site"])
	}
	for i, reason := range map[int]string{2: "zero", 3: "jump"} {
		if rows[i]["gps_filter"] != reason {
			t.Errorf("reading %d: gps_filter %v, want %q", i, rows[i]["gps_filter"], reason)
		}
		if rows[i]["district"] != "south" {
			t.Errorf("reading %d: district %v, want the last good fix's (south)", i, rows[i]["district"])
		}
	}
	for _, reason := range []string{"zero", "jump"} {
		if got := h.metric("sanigate_gps_fixes_filtered_total", map[string]string{"reason": reason}); got != 1 {
			t.Errorf("gps filtered %s: got %v, want 1", reason, got)
		}
	}
}

// A fixed device is placed by its registered position: a bin registered in
// the north that reports a position in the south stays in the north.
func TestFixedDeviceKeepsItsRegisteredPlace(t *testing.T) {
	sections := demoPlaces(t)
	h := newHarnessYAML(t, "", sections, func(cfg *fleet.Config) {
		for i := range cfg.Devices {
			if cfg.Devices[i].ID == "bin-1" {
				lat, lon := 39.975, 116.35 // north
				cfg.Devices[i].Lat, cfg.Devices[i].Lon = &lat, &lon
			}
		}
	})
	c := h.mustConnect("bin-1")
	c2 := h.mustConnect("bin-2") // registered in the north, no position
	ts := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	south := `"lat":39.8615,"lon":116.3115`
	publish(t, c, topic("bin-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"fill_pct":50,%s}`, ts, south))
	publish(t, c2, topic("bin-2", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"fill_pct":51,%s}`, ts, south))
	testenv.Eventually(t, 10*time.Second, "two bin readings", func() bool { return h.influx.Count(t, "bin", "fill_pct", "") == 2 })
	for _, row := range h.influx.Rows(t, `SELECT * FROM "bin"`) {
		if row["district"] != "north" || row["site"] == "kw-plant" {
			t.Errorf("%v: district %v site %v, want its registered north", row["device"], row["district"], row["site"])
		}
	}
}
