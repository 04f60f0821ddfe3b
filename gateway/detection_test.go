package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
)

// tripPoints is dumpingTrip's readings, one JSON object each.
func tripPoints(t testing.TB, start time.Time) []string {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(dumpingTrip(start)), &raw); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = string(r)
	}
	return out
}

// detectionHarness runs the gateway with the demo's places and trucks named ids.
func detectionHarness(t testing.TB, ids ...string) *harness {
	t.Helper()
	var trucks strings.Builder
	for _, id := range ids {
		h, _ := fleet.HashPassword("pw-"+id, 4)
		fmt.Fprintf(&trucks, "  - {id: %s, kind: truck, category: kitchen, capacity_kg: 8000, password_hash: %q}\n", id, h)
	}
	sections := demoPlaces(t) + fmt.Sprintf(`cases:
  units:
    - {id: city-office, name: City office}
  dispatch: {default_unit: city-office}
`)
	return newHarnessYAML(t, trucks.String(), sections)
}

// dumpingCases returns the illegal_dumping cases by device.
func dumpingCases(t testing.TB, h *harness) map[string]int {
	t.Helper()
	page, err := h.g.Cases().List(context.Background(), cases.Actor{Name: "test", Role: cases.RoleCity},
		cases.Filter{Type: "illegal_dumping", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range page.Cases {
		out[c.Device]++
	}
	return out
}

// TestDetectionOverMQTT publishes a truck's trip with a dump at a farm over
// real MQTT in the ways a fleet sends it: live, one reading a message;
// uploaded 90 minutes and 3 hours late after a few live readings; the end of
// the trip live first and the buffered dump 29 minutes after; and live with
// every reading published twice. Each gives one case, raised once; no
// reading is left out as late, and the gateway's own records (violations,
// case events) never reach the detectors.
func TestDetectionOverMQTT(t *testing.T) {
	ids := []string{"trk-live", "trk-90", "trk-3h", "trk-29", "trk-dup"}
	h := detectionHarness(t, ids...)
	now := time.Now().Truncate(time.Second)
	readings := 0
	send := func(id string, pts ...string) {
		t.Helper()
		c, err := h.connect(id, "pw-"+id)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(50)
		for _, p := range pts {
			publish(t, c, topic(id, "telemetry"), 1, p)
			readings += strings.Count(p, `"ts"`)
		}
	}
	batch := func(pts []string) string { return "[" + strings.Join(pts, ",") + "]" }

	// Live: the trip ends now, each reading in its own message.
	send("trk-live", tripPoints(t, now.Add(-20*time.Minute))...)
	// Out of coverage: a few live readings, then the rest in one upload.
	for id, late := range map[string]time.Duration{"trk-90": 90 * time.Minute, "trk-3h": 3 * time.Hour} {
		pts := tripPoints(t, now.Add(-late-20*time.Minute))
		send(id, pts[:5]...)
		send(id, batch(pts[5:]))
	}
	// The end of the trip live first, the buffered dump 29 minutes later.
	pts := tripPoints(t, now.Add(-49*time.Minute))
	send("trk-29", pts[100:]...)
	send("trk-29", batch(pts[:100]))
	// Every reading twice, as QoS 1 resends are.
	var twice []string
	for _, p := range tripPoints(t, now.Add(-20*time.Minute)) {
		twice = append(twice, p, p)
	}
	send("trk-dup", twice...)

	testenv.Eventually(t, 30*time.Second, "one illegal_dumping case per truck", func() bool {
		return len(dumpingCases(t, h)) == len(ids)
	})
	got := dumpingCases(t, h)
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s: %d illegal_dumping cases, want 1", id, got[id])
		}
	}
	if n := h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping", "resolved": "false"}); n != float64(len(ids)) {
		t.Errorf("illegal_dumping handed to the sink %g times, want %d (once per truck)", n, len(ids))
	}
	testenv.Eventually(t, 15*time.Second, "every reading seen by the detectors", func() bool {
		return h.metric("sanigate_violation_readings_total", nil) == float64(readings)
	})
	if n := h.metric("sanigate_violation_readings_total", nil); n != float64(readings) {
		t.Errorf("detectors received %g readings, %d were published: the gateway's own records reached them", n, readings)
	}
	if n := h.metric("sanigate_violation_late_readings_total", nil); n != 0 {
		t.Errorf("late readings: %g, want 0", n)
	}
	if n := h.metric("sanigate_violation_derived_records_total", nil); n == 0 {
		t.Errorf("no derived record passed over: the gateway's own records are not in the spool?")
	}
	if n := h.metric("sanigate_violation_duplicate_readings_total", nil); n < 120 {
		t.Errorf("duplicates passed over: %g, want at least the 120 resent", n)
	}
}

// TestForeignDetectorState removes the spool folder and keeps the state
// folder between two runs of the gateway: the detectors' state of the old
// spool is not restored, so readings older than what it had passed are
// judged, not left out as late.
func TestForeignDetectorState(t *testing.T) {
	h := detectionHarness(t, "trk-a")
	now := time.Now().Truncate(time.Second)
	sendAll := func(pts ...string) {
		t.Helper()
		c, err := h.connect("trk-a", "pw-trk-a")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(50)
		for _, p := range pts {
			publish(t, c, topic("trk-a", "telemetry"), 1, p)
		}
	}
	// First run: a trip that ends now, judged and checkpointed.
	sendAll(tripPoints(t, now.Add(-20*time.Minute))...)
	testenv.Eventually(t, 30*time.Second, "the first trip judged", func() bool {
		return h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping"}) == 1
	})
	h.stop()
	spoolDir := h.cfg.Resolve(h.cfg.Spool.Dir)
	if _, err := os.Stat(spoolDir + "-state"); err != nil {
		t.Fatalf("no state folder: %v", err)
	}
	if err := os.RemoveAll(spoolDir); err != nil {
		t.Fatal(err)
	}
	h.start()
	// Second run: a trip from an hour before, uploaded at once.
	pts := tripPoints(t, now.Add(-80*time.Minute))
	sendAll("[" + strings.Join(pts, ",") + "]")
	testenv.Eventually(t, 30*time.Second, "the earlier trip judged", func() bool {
		return h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping"}) == 1
	})
	if n := h.metric("sanigate_violation_late_readings_total", nil); n != 0 {
		t.Errorf("late readings after the restart: %g (the old spool's state was restored)", n)
	}
	if !strings.Contains(h.logs.String(), "belongs to another spool") {
		t.Errorf("no warning about the foreign state; logs:\n%s", h.logs.String())
	}
}
