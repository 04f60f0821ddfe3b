package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
)

// rowsHarness runs the gateway with the demo's districts and sites, the
// sweeping routes in the GeoJSON text routes (none when empty), and cases
// dispatched by district for vehicles that go offline.
func rowsHarness(t *testing.T, routes string, moreDevices ...string) *harness {
	t.Helper()
	demo, err := filepath.Abs("../examples/demo")
	if err != nil {
		t.Fatal(err)
	}
	places := fmt.Sprintf("places:\n  districts: %s\n  sites: %s\n",
		filepath.Join(demo, "districts.geojson"), filepath.Join(demo, "sites.geojson"))
	if routes != "" {
		path := filepath.Join(t.TempDir(), "sweeping_routes.geojson")
		if err := os.WriteFile(path, []byte(routes), 0o600); err != nil {
			t.Fatal(err)
		}
		places += fmt.Sprintf("  sweeping_routes: %s\n", path)
	}
	return newHarnessYAML(t, strings.Join(moreDevices, ""), places+`cases:
  units:
    - {id: city-office, name: City office}
    - {id: ops-north, name: North operations, escalation: city-office}
    - {id: ops-central, name: Central operations, escalation: city-office}
  dispatch:
    default_unit: city-office
    rules:
      - {type: device_offline, district: north, unit: ops-north}
      - {type: device_offline, district: central, unit: ops-central}
`)
}

// casesOf lists the cases of type typ, all devices.
func casesOf(t *testing.T, h *harness, typ string) []cases.Case {
	t.Helper()
	page, err := h.g.Cases().List(context.Background(), cases.Actor{Name: "test", Role: cases.RoleCity},
		cases.Filter{Type: typ, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Cases
}

// caseOf returns device's one case of type typ, or false.
func caseOf(t *testing.T, h *harness, typ, device string) (cases.Case, bool) {
	t.Helper()
	for _, c := range casesOf(t, h, typ) {
		if c.Device == device {
			return c, true
		}
	}
	return cases.Case{}, false
}

// sendEach publishes each payload in its own QoS 1 message, as a live device does.
func sendEach(t *testing.T, c pahomqtt.Client, device string, payloads []string) {
	t.Helper()
	for _, p := range payloads {
		publish(t, c, topic(device, "telemetry"), 1, p)
	}
}

// onlyDeviceReadings checks that the detectors received the published
// readings and nothing else: the gateway's own records (violations,
// coverage, case events) written meanwhile were passed over, not read back
// as readings of a device, and nothing was left out as late.
func onlyDeviceReadings(t *testing.T, h *harness, published int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the gateway's own records passed over by the detectors", func() bool {
		return h.metric("sanigate_violation_derived_records_total", nil) > 0
	})
	if n := h.metric("sanigate_violation_readings_total", nil); n != float64(published) {
		t.Errorf("detectors received %g readings, %d were published", n, published)
	}
	if n := h.metric("sanigate_violation_late_readings_total", nil); n != 0 {
		t.Errorf("late readings: %g, want 0", n)
	}
}

// fillReadings returns one bin reading every step from start for span,
// the fill level of each given by fill.
func fillReadings(start time.Time, span, step time.Duration, fill func(i int) int) []string {
	var out []string
	for i := 0; time.Duration(i)*step < span; i++ {
		out = append(out, fmt.Sprintf(`{"ts":%d,"fill_pct":%d}`, start.Add(time.Duration(i)*step).UnixMilli(), fill(i)))
	}
	return out
}

// A bin alternating 91 / 89 % every 5 minutes for 3 hours, and a bin
// reporting every minute in 5-minute blocks of 91 and 89 %, are both full
// for the whole 3 hours (89 % is inside the hysteresis band): each gets one
// bin_overflow case, whatever its reporting rate. Their twins alternating
// 91 / 79 % (under the clear level) get none, at either rate.
func TestRowBinOverflowSameVerdictAtAnyRate(t *testing.T) {
	var more strings.Builder
	for _, id := range []string{"bin-3", "bin-4"} {
		pw, err := fleet.HashPassword("pw-"+id, 4)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&more, "  - {id: %s, kind: bin, category: other, contractor: greenclean, district: north, password_hash: %q}\n", id, pw)
	}
	h := rowsHarness(t, "", more.String())
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	published := 0
	send := func(id string, step time.Duration, fill func(i int) int) {
		pts := fillReadings(start, 3*time.Hour, step, fill)
		sendEach(t, h.mustConnect(id), id, pts)
		published += len(pts)
	}
	alternate := func(i int) int { return 91 - 2*(i%2) }
	send("bin-1", 5*time.Minute, alternate)
	send("bin-2", time.Minute, func(i int) int { return alternate(i / 5) })
	// The twins alternate between 91 and 79 %, under the clear level: only
	// the time between two full readings counts, under 2 h at either rate.
	emptied := func(i int) int { return 91 - 12*(i%2) }
	send("bin-3", 5*time.Minute, emptied)
	send("bin-4", time.Minute, func(i int) int { return emptied(i / 5) })

	testenv.Eventually(t, 30*time.Second, "a bin_overflow case for each bin", func() bool {
		return len(casesOf(t, h, "bin_overflow")) >= 2
	})
	got := map[string]int{}
	for _, c := range casesOf(t, h, "bin_overflow") {
		got[c.Device]++
		if !c.Open || c.Severity != "minor" {
			t.Errorf("%s: case open %v severity %s, want an open minor case", c.Device, c.Open, c.Severity)
		}
	}
	if got["bin-1"] != 1 || got["bin-2"] != 1 {
		t.Errorf("bin_overflow cases per bin: %v, want one each (5-min and 1-min reporting)", got)
	}
	rows := h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='bin_overflow' AND "state"='raised'`)
	starts := map[string]any{}
	for _, r := range rows {
		starts[fmt.Sprint(r["device"])] = r["time"]
	}
	if len(rows) != 2 || starts["bin-1"] != starts["bin-2"] {
		t.Errorf("raise points: %v, want one per bin, both from the first full reading", rows)
	}
	// Every reading judged, and the clock past them: the twins get no case.
	testenv.Eventually(t, 10*time.Second, "every reading received by the detectors", func() bool {
		return h.metric("sanigate_violation_readings_total", nil) == float64(published)
	})
	after := float64(time.Now().Add(2 * time.Second).Unix())
	testenv.Eventually(t, 10*time.Second, "the detectors' clock past the readings", func() bool {
		return h.metric("sanigate_violation_clock_seconds", nil) > after
	})
	if n := len(casesOf(t, h, "bin_overflow")); n != 2 {
		t.Errorf("%d bin_overflow cases, want 2 (none for the bins emptied to 79 %% in turn)", n)
	}
}

// A toilet over the NH3 limit of its class, with H2S well under its own,
// gets a toilet_odour case that names NH3 and the value that crossed the
// limit, not H2S.
func TestRowToiletOdourNamesTheGas(t *testing.T) {
	h := rowsHarness(t, "")
	start := time.Now().Add(-25 * time.Minute).Truncate(time.Second)
	var pts []string
	for i := 0; i < 25; i++ {
		nh3 := 1.2 + float64(i%3)*0.1 // class 2: the limit is 1.0 mg/m3; the highest is 1.4
		pts = append(pts, fmt.Sprintf(`{"ts":%d,"nh3_mgm3":%.2f,"h2s_mgm3":0.003}`, start.Add(time.Duration(i)*time.Minute).UnixMilli(), nh3))
	}
	sendEach(t, h.mustConnect("toilet-1"), "toilet-1", pts)

	var c cases.Case
	testenv.Eventually(t, 30*time.Second, "a toilet_odour case", func() bool {
		var ok bool
		c, ok = caseOf(t, h, "toilet_odour", "toilet-1")
		return ok
	})
	if !strings.Contains(c.Summary, "NH3 1.40 > 1.00") {
		t.Errorf("case summary %q does not name NH3 with its highest value 1.40 over the limit 1.00", c.Summary)
	}
	if strings.Contains(c.Summary, "H2S") {
		t.Errorf("case summary %q names H2S, which stayed under its limit", c.Summary)
	}
}

// A bin full for 2 h 20 min, then under the clear level: the violation is
// raised and resolved, and InfluxDB keeps both points, the raise with what
// it said when raised (now marked resolved) and the resolution with its own.
func TestRowResolvedViolationKeepsBothPoints(t *testing.T) {
	h := rowsHarness(t, "")
	start := time.Now().Add(-160 * time.Minute).Truncate(time.Second)
	pts := fillReadings(start, 160*time.Minute, 5*time.Minute, func(i int) int {
		if i < 28 { // 140 minutes full
			return 95
		}
		return 10
	})
	sendEach(t, h.mustConnect("bin-1"), "bin-1", pts)

	var rows []map[string]any
	testenv.Eventually(t, 30*time.Second, "the raise and resolve points of bin_overflow", func() bool {
		rows = h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='bin_overflow' AND "device"='bin-1' ORDER BY time`)
		return len(rows) >= 2
	})
	if len(rows) != 2 {
		t.Fatalf("got %d bin_overflow points, want 2: %v", len(rows), rows)
	}
	raise, resolve := rows[0], rows[1]
	if raise["state"] != "raised" || raise["resolved"] != true || !strings.Contains(fmt.Sprint(raise["summary"]), "at or over 90 %") {
		t.Errorf("raise point: %v", raise)
	}
	if resolve["state"] != "resolved" || resolve["resolved"] != true || !strings.Contains(fmt.Sprint(resolve["summary"]), "no longer full") {
		t.Errorf("resolve point: %v", resolve)
	}
	if raise["key"] != resolve["key"] || raise["time"] == resolve["time"] {
		t.Errorf("raise key %v at %v, resolve key %v at %v: want one key, two times", raise["key"], raise["time"], resolve["key"], resolve["time"])
	}
	onlyDeviceReadings(t, h, len(pts))
}

// A sweeper and a truck registered in the north, last seen in the central
// district, go offline (the sweeper falls silent, the truck's connection
// drops): each case is in the central district, dispatched to its unit.
func TestRowVehicleOfflineInDistrictOfLastPosition(t *testing.T) {
	t.Parallel() // waits for the wall clock
	h := rowsHarness(t, "")
	now := time.Now().Truncate(time.Second)
	fix := func(at time.Duration, extra string) string {
		return fmt.Sprintf(`{"ts":%d,"lat":39.915,"lon":116.35,"speed_kmh":0,"hdop":0.8%s}`, now.Add(at).UnixMilli(), extra)
	}
	sendEach(t, h.mustConnect("sweeper-1"), "sweeper-1",
		[]string{fix(-20*time.Second, `,"brush_on":false`), fix(-10*time.Second, `,"brush_on":false`), fix(0, `,"brush_on":false`)})
	truck := h.mustConnect("truck-1")
	sendEach(t, truck, "truck-1", []string{fix(-20*time.Second, `,"load_kg":2000`), fix(-10*time.Second, `,"load_kg":2000`),
		fix(0, `,"load_kg":2000`)})
	truck.Disconnect(100)
	dropConnection(t, h.g.MQTTAddr(), "truck-1", "pw-truck-1")

	testenv.Eventually(t, 60*time.Second, "device_offline cases of the sweeper and the truck", func() bool {
		_, s := caseOf(t, h, "device_offline", "sweeper-1")
		_, tr := caseOf(t, h, "device_offline", "truck-1")
		return s && tr
	})
	for _, id := range []string{"sweeper-1", "truck-1"} {
		c, _ := caseOf(t, h, "device_offline", id)
		if c.District != "central" || c.Unit != "ops-central" {
			t.Errorf("%s offline: case district %q unit %q, want central, ops-central (last seen there)", id, c.District, c.Unit)
		}
	}
}

// sweepRoute is a one-route GeoJSON: 1 km along lat 39.915 in the central
// district, swept by sweeper-1 in window.
func sweepRoute(window string) string {
	return oneRoute("row-sweep", "sweeper-1", window, 39.915, 116.36167)
}

// oneRoute is a GeoJSON of route id, swept by sweeper in window, along lat
// from lon 116.35 to lon east.
func oneRoute(id, sweeper, window string, lat, east float64) string {
	return fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":%q,"name":"row sweep",
"window":%q,"max_speed_kmh":8,"contractor":"greenclean","sweepers":[%q]},
"geometry":{"type":"LineString","coordinates":[[116.35,%g],[%g,%g]]}}]}`, id, window, sweeper, lat, east, lat)
}

// nextWindow is the next whole minute of city time that begins at least
// 20 s from now, as a route window, with its begin and end.
func nextWindow() (window string, begin, end time.Time) {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		loc = time.FixedZone("CST", 8*3600)
	}
	begin = time.Now().Add(20 * time.Second).Truncate(time.Minute).Add(time.Minute).In(loc)
	end = begin.Add(time.Minute)
	return begin.Format("15:04") + "-" + end.Format("15:04"), begin, end
}

// A sweeper that drives 100 m of a 1 km route in its window, reporting live:
// missed_route is filed as soon as the window ends, not an upload delay
// after it. The window is the next whole minute of city time.
func TestRowMissedSweepingJudgedAtWindowEnd(t *testing.T) {
	t.Parallel() // waits for the wall clock
	window, begin, end := nextWindow()
	h := rowsHarness(t, sweepRoute(window))
	c := h.mustConnect("sweeper-1")
	lon, published := 116.35, 0
	for time.Now().Before(end.Add(4 * time.Second)) {
		now := time.Now()
		speed := 0.0
		if !now.Before(begin) && now.Before(end) {
			speed = 6 // 100 m in the minute of the window
			lon += 0.00002
		}
		publish(t, c, topic("sweeper-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%d,"lat":39.915,"lon":%.6f,"speed_kmh":%g,"hdop":0.8,"brush_on":true}`,
			now.UnixMilli(), lon, speed))
		published++
		time.Sleep(time.Second)
	}

	var got cases.Case
	testenv.Eventually(t, 30*time.Second, "the missed_route case soon after the window's end", func() bool {
		var ok bool
		got, ok = caseOf(t, h, "missed_route", "sweeper-1")
		return ok
	})
	t.Logf("missed_route case filed %s after the window's end", got.FiledAt.Sub(end).Round(time.Millisecond))
	if got.Route != "row-sweep" || !strings.Contains(got.Summary, "covered") {
		t.Errorf("case route %q summary %q", got.Route, got.Summary)
	}
	var cov []map[string]any
	testenv.Eventually(t, 10*time.Second, "the coverage record of the window", func() bool {
		cov = h.influx.Rows(t, `SELECT * FROM "forever"."coverage" WHERE "route"='row-sweep'`)
		return len(cov) == 1
	})
	if f, err := strconv.ParseFloat(fmt.Sprint(cov[0]["fraction"]), 64); err != nil || f <= 0 || f >= 0.9 {
		t.Errorf("coverage fraction %v, want a part of the route under 0.9", cov[0]["fraction"])
	}
	onlyDeviceReadings(t, h, published)
}

// A sweeper out of coverage in its window sweeps the whole route and
// uploads the window's track after the window ended and was judged from the
// clock without it: the late track is judged like live data, the coverage
// record says the route was swept, and the missed_route case filed from the
// clock is withdrawn.
func TestRowSweepingUploadedAfterWindowEnd(t *testing.T) {
	t.Parallel() // waits for the wall clock
	window, begin, end := nextWindow()
	pw, err := fleet.HashPassword("pw-sweeper-2", 4)
	if err != nil {
		t.Fatal(err)
	}
	// 100 m along lat 39.925: 7 km/h covers it in the minute of the window.
	h := rowsHarness(t, oneRoute("row-sweep-2", "sweeper-2", window, 39.925, 116.35117),
		fmt.Sprintf("  - {id: sweeper-2, kind: sweeper, contractor: greenclean, district: central, password_hash: %q}\n", pw))
	c := h.mustConnect("sweeper-2")
	reading := func(at time.Time, lon, speed float64) string {
		return fmt.Sprintf(`{"ts":%d,"lat":39.925,"lon":%.6f,"speed_kmh":%g,"hdop":0.8,"brush_on":true}`, at.UnixMilli(), lon, speed)
	}
	published := 0
	for time.Now().Before(begin) { // live up to the window, parked at its start
		publish(t, c, topic("sweeper-2", "telemetry"), 1, reading(time.Now(), 116.3499, 0))
		published++
		time.Sleep(2 * time.Second)
	}
	var held []string // out of coverage: the window's readings are buffered
	for at := begin; at.Before(end); at = at.Add(time.Second) {
		held = append(held, reading(at, 116.3499+float64(at.Sub(begin)/time.Second)*0.0000228, 7))
	}
	time.Sleep(time.Until(end))
	fraction := func() (float64, bool) {
		rows := h.influx.Rows(t, `SELECT "fraction" FROM "forever"."coverage" WHERE "route"='row-sweep-2'`)
		if len(rows) != 1 {
			return 0, false
		}
		f, err := strconv.ParseFloat(fmt.Sprint(rows[0]["fraction"]), 64)
		return f, err == nil
	}
	testenv.Eventually(t, 30*time.Second, "the window judged from the clock, without the buffered track", func() bool {
		_, ok := fraction()
		return ok
	})
	if f, _ := fraction(); f != 0 {
		t.Fatalf("coverage %v before the upload, want 0 (nothing uploaded yet)", f)
	}
	testenv.Eventually(t, 30*time.Second, "missed_route filed from the clock", func() bool {
		cs, ok := caseOf(t, h, "missed_route", "sweeper-2")
		return ok && cs.Open
	})
	publish(t, c, topic("sweeper-2", "telemetry"), 1, "["+strings.Join(held, ",")+"]")
	published += len(held)
	testenv.Eventually(t, 30*time.Second, "the window judged again with the uploaded track", func() bool {
		f, ok := fraction()
		return ok && f >= 0.9
	})
	testenv.Eventually(t, 30*time.Second, "the missed_route case withdrawn", func() bool {
		cs, ok := caseOf(t, h, "missed_route", "sweeper-2")
		return ok && !cs.Open
	})
	if n := len(casesOf(t, h, "missed_route")); n != 1 {
		t.Errorf("%d missed_route cases, want the one withdrawn", n)
	}
	onlyDeviceReadings(t, h, published)
}

// A truck's tracker silent for 40 minutes mid-trip, back driving with
// 1,500 kg less and no site within reach: unaccounted_load (and the
// tracking gap), no illegal_dumping.
func TestRowUnaccountedLoadBackDriving(t *testing.T) {
	h := rowsHarness(t, "")
	start := time.Now().Add(-62 * time.Minute).Truncate(time.Second)
	var items []map[string]any
	add := func(at time.Duration, lon, load float64, i int) {
		items = append(items, map[string]any{"ts": start.Add(at).UnixMilli(), "lat": 39.91, "lon": lon,
			"speed_kmh": 30, "hdop": 0.8, "ignition": true, "tipper": false, "load_kg": load + float64(i%3*10)})
	}
	for i := 0; i < 60; i++ { // 10 minutes east from 116.40 with 6,000 kg
		add(time.Duration(i)*10*time.Second, 116.40+float64(i)*0.00007, 6000, i)
	}
	for i := 0; i < 60; i++ { // 40 minutes on, 3 km further east, still driving, 4,500 kg
		add(50*time.Minute+time.Duration(i)*10*time.Second, 116.435+float64(i)*0.00007, 4500, i)
	}
	b, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	c := h.mustConnect("truck-1")
	publish(t, c, topic("truck-1", "telemetry"), 1, string(b))

	var unacc []map[string]any
	testenv.Eventually(t, 30*time.Second, "unaccounted_load and tracking_gap stored", func() bool {
		unacc = h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='unaccounted_load' AND "state"='raised'`)
		gap := h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='tracking_gap' AND "state"='raised'`)
		return len(unacc) >= 1 && len(gap) >= 1
	})
	if len(unacc) != 1 || unacc[0]["severity"] != "major" || !strings.Contains(fmt.Sprint(unacc[0]["summary"]), "kg less") {
		t.Errorf("unaccounted_load: %v, want one major violation naming the load lost", unacc)
	}
	if _, ok := caseOf(t, h, "unaccounted_load", "truck-1"); !ok {
		t.Errorf("no unaccounted_load case")
	}
	if rows := h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='illegal_dumping'`); len(rows) != 0 {
		t.Errorf("illegal_dumping raised across the gap: %v", rows)
	}
}
