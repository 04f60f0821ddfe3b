package gateway

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
)

// lateHarness runs the gateway with the demo's places, trucks named ids and
// the violations section given (empty for the defaults).
func lateHarness(t testing.TB, violations string, ids ...string) *harness {
	t.Helper()
	var trucks strings.Builder
	for _, id := range ids {
		h, _ := fleet.HashPassword("pw-"+id, 4)
		fmt.Fprintf(&trucks, "  - {id: %s, kind: truck, category: kitchen, capacity_kg: 8000, password_hash: %q}\n", id, h)
	}
	sections := demoPlaces(t) + `cases:
  units:
    - {id: city-office, name: City office}
  dispatch: {default_unit: city-office}
` + violations
	return newHarnessYAML(t, trucks.String(), sections)
}

// parked is a truck parked west of the demo's farm with its ignition on,
// reporting every 10 s over [from, to).
func parked(from, to time.Time) []string {
	var out []string
	for t := from; t.Before(to); t = t.Add(10 * time.Second) {
		out = append(out, fmt.Sprintf(`{"ts":%d,"lat":39.9935,"lon":116.45,"speed_kmh":0,"heading_deg":90,"hdop":0.8,"load_kg":2500,"ignition":true,"tipper":false}`,
			t.UnixMilli()))
	}
	return out
}

// sendBatches publishes pts as id, n readings a message.
func sendBatches(t testing.TB, h *harness, id string, n int, pts []string) {
	t.Helper()
	c, err := h.connect(id, "pw-"+id)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(50)
	for i := 0; i < len(pts); i += n {
		publish(t, c, topic(id, "telemetry"), 1, "["+strings.Join(pts[i:min(i+n, len(pts))], ",")+"]")
	}
}

// deviceCases returns the cases of a type for a device, with their history.
func deviceCases(t testing.TB, h *harness, typ, device string) []*cases.Case {
	t.Helper()
	ctx := context.Background()
	who := cases.Actor{Name: "test", Role: cases.RoleCity}
	page, err := h.g.Cases().List(ctx, who, cases.Filter{Type: typ, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []*cases.Case
	for _, c := range page.Cases {
		if c.Device != device {
			continue
		}
		full, err := h.g.Cases().Get(ctx, who, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, full)
	}
	return out
}

// TestLateBeyondMemory uploads a truck's dump at the farm an hour after
// 40 minutes of live readings that came later, with a replay window of 10
// minutes: the detectors no longer hold the span in memory, read the truck's
// history back from InfluxDB and raise the dump once, with the same verdict
// (types and starts) as a truck that sent the same readings in order. The
// same upload again raises nothing twice and withdraws nothing.
func TestLateBeyondMemory(t *testing.T) {
	h := lateHarness(t, "violations:\n  replay_window: 10m\n  mark_every: 2m\n", "trk-late", "trk-ref")
	now := time.Now().Truncate(time.Second)
	live := parked(now.Add(-40*time.Minute), now)
	trip := tripPoints(t, now.Add(-100*time.Minute))
	sendBatches(t, h, "trk-ref", 20, append(append([]string(nil), trip...), live...))
	testenv.Eventually(t, 30*time.Second, "the reference judged", func() bool {
		return h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping"}) == 1
	})
	sendBatches(t, h, "trk-late", 20, live)
	testenv.Eventually(t, 30*time.Second, "the live readings judged", func() bool {
		return h.metric("sanigate_violation_readings_total", nil) == float64(len(trip)+2*len(live))
	})
	sendBatches(t, h, "trk-late", len(trip), trip)

	dumping := map[string]string{"type": "illegal_dumping", "resolved": "false"}
	testenv.Eventually(t, 60*time.Second, "the late dump raised", func() bool {
		return h.metric("sanigate_violations_raised_total", dumping) >= 2
	})
	verdict := func(device string) string {
		var keys []string
		for _, r := range h.influx.Rows(t, fmt.Sprintf(`SELECT "key", "resolved" FROM "forever"."violation" WHERE "state" = 'raised' AND "device" = '%s'`, device)) {
			keys = append(keys, fmt.Sprint(strings.Replace(fmt.Sprint(r["key"]), device, "*", 1), " resolved=", r["resolved"]))
		}
		sort.Strings(keys)
		return strings.Join(keys, "\n")
	}
	testenv.Eventually(t, 30*time.Second, "the verdict of the truck that sent in order", func() bool {
		ref := verdict("trk-ref") // the dump, and the silence after the trip: a tracking gap and device_offline
		return strings.Contains(ref, "illegal_dumping") && strings.Contains(ref, "tracking_gap") &&
			strings.Contains(ref, "device_offline") && verdict("trk-late") == ref
	})
	if got, want := verdict("trk-late"), verdict("trk-ref"); got != want {
		t.Errorf("late upload:\n%s\nin order:\n%s", got, want)
	}
	if n := len(deviceCases(t, h, "illegal_dumping", "trk-late")); n != 1 {
		t.Errorf("illegal_dumping cases: %d, want 1", n)
	}
	if n := h.metric("sanigate_violation_readbacks_total", nil); n != 1 {
		t.Errorf("read-backs: %g, want 1", n)
	}
	if n := h.metric("sanigate_violation_late_readings_total", nil); n != 0 {
		t.Errorf("late readings left out: %g, want 0", n)
	}

	// Again: every key is stored; nothing is raised twice or withdrawn.
	raisedBefore := h.metric("sanigate_violations_raised_total", nil)
	sendBatches(t, h, "trk-late", len(trip), trip)
	testenv.Eventually(t, 60*time.Second, "the second read-back", func() bool {
		return h.metric("sanigate_violation_readbacks_total", nil) == 2
	})
	if n := h.metric("sanigate_violations_raised_total", dumping); n != 2 {
		t.Errorf("illegal_dumping handed to the sink %g times, want 2 (once per truck)", n)
	}
	if n := h.metric("sanigate_violations_raised_total", nil); n != raisedBefore {
		t.Errorf("violations handed to the sink: %g after the same upload again, %g before", n, raisedBefore)
	}
	if n := h.metric("sanigate_violation_withdrawn_total", nil); n != 0 {
		t.Errorf("withdrawn: %g, want 0", n)
	}
	if n := len(deviceCases(t, h, "illegal_dumping", "trk-late")); n != 1 {
		t.Errorf("illegal_dumping cases after the upload again: %d, want 1", n)
	}
}

// TestLateAfterRestart sends live readings, restarts the gateway (state is
// kept, the detectors' memory of readings is not), then uploads a dump from
// an hour before them: it is judged from the history read back, once.
func TestLateAfterRestart(t *testing.T) {
	h := lateHarness(t, "", "trk-rs")
	now := time.Now().Truncate(time.Second)
	live := parked(now.Add(-40*time.Minute), now)
	sendBatches(t, h, "trk-rs", 20, live)
	testenv.Eventually(t, 30*time.Second, "the live readings judged", func() bool {
		return h.metric("sanigate_violation_readings_total", nil) == float64(len(live))
	})
	h.stop()
	h.start()
	trip := tripPoints(t, now.Add(-100*time.Minute))
	sendBatches(t, h, "trk-rs", len(trip), trip)
	dumping := map[string]string{"type": "illegal_dumping", "resolved": "false"}
	testenv.Eventually(t, 60*time.Second, "the late dump raised", func() bool {
		return h.metric("sanigate_violations_raised_total", dumping) >= 1
	})
	testenv.Eventually(t, 30*time.Second, "the read-back done", func() bool {
		return h.metric("sanigate_violation_readbacks_total", nil) == 1
	})
	if n := h.metric("sanigate_violations_raised_total", dumping); n != 1 {
		t.Errorf("illegal_dumping handed to the sink %g times, want 1", n)
	}
	if n := len(deviceCases(t, h, "illegal_dumping", "trk-rs")); n != 1 {
		t.Errorf("illegal_dumping cases: %d, want 1", n)
	}
	if n := h.metric("sanigate_violation_late_readings_total", nil); n != 0 {
		t.Errorf("late readings left out: %g, want 0", n)
	}
}

// TestLateWithdrawsBeyondMemory: live readings with a 15-minute silence in
// the middle raise a tracking gap; the readings of the silence come an hour
// later, beyond the replay window, and the read-back withdraws it with a
// note on its case and a withdrawn point in InfluxDB.
func TestLateWithdrawsBeyondMemory(t *testing.T) {
	h := lateHarness(t, "violations:\n  replay_window: 10m\n  mark_every: 2m\n", "trk-gap")
	now := time.Now().Truncate(time.Second)
	gapFrom, gapTo := now.Add(-60*time.Minute), now.Add(-45*time.Minute)
	live := append(parked(now.Add(-75*time.Minute), gapFrom), parked(gapTo, now)...)
	sendBatches(t, h, "trk-gap", 20, live)
	testenv.Eventually(t, 30*time.Second, "the tracking gap raised", func() bool {
		return len(deviceCases(t, h, "tracking_gap", "trk-gap")) == 1
	})
	gap := parked(gapFrom, gapTo)
	sendBatches(t, h, "trk-gap", len(gap), gap)
	testenv.Eventually(t, 60*time.Second, "the tracking gap withdrawn", func() bool {
		return h.metric("sanigate_violation_withdrawn_total", nil) >= 1
	})
	cs := deviceCases(t, h, "tracking_gap", "trk-gap")
	if len(cs) != 1 {
		t.Fatalf("tracking_gap cases: %d, want 1", len(cs))
	}
	noted := false
	for _, e := range cs[0].History {
		if strings.Contains(e.Note, "no longer support") {
			noted = true
		}
	}
	if !noted {
		t.Errorf("no withdrawal note on the case; history: %+v", cs[0].History)
	}
	testenv.Eventually(t, 30*time.Second, "the withdrawn point in InfluxDB", func() bool {
		return len(h.influx.Rows(t, `SELECT "key" FROM "forever"."violation" WHERE "state" = 'withdrawn' AND "type" = 'tracking_gap'`)) == 1
	})
	rows := h.influx.Rows(t, `SELECT "withdrawn" FROM "forever"."violation" WHERE "state" = 'raised' AND "type" = 'tracking_gap'`)
	if len(rows) != 1 || rows[0]["withdrawn"] != true {
		t.Errorf("raise point of the tracking gap: %v, want withdrawn=true", rows)
	}
	if n := h.metric("sanigate_violation_readbacks_total", nil); n != 1 {
		t.Errorf("read-backs: %g, want 1", n)
	}
}

// TestReadbackQueueThroughOutage stops InfluxDB, then three trucks send
// live readings and, after them, a dump from an hour before: their
// read-backs wait for the writer (the live readings are still in the spool),
// the queue of one is full and says so, and nothing is dropped: once InfluxDB
// is back each dump is raised once.
func TestReadbackQueueThroughOutage(t *testing.T) {
	ids := []string{"trk-q1", "trk-q2", "trk-q3"}
	h := lateHarness(t, "violations:\n  readback_queue: 1\n  replay_window: 10m\n  mark_every: 2m\n", ids...)
	h.influx.Stop()
	now := time.Now().Truncate(time.Second)
	live := parked(now.Add(-40*time.Minute), now)
	for _, id := range ids {
		sendBatches(t, h, id, 20, live)
	}
	testenv.Eventually(t, 30*time.Second, "the live readings judged", func() bool {
		return h.metric("sanigate_violation_readings_total", nil) == float64(len(ids)*len(live))
	})
	trip := tripPoints(t, now.Add(-100*time.Minute))
	for _, id := range ids {
		sendBatches(t, h, id, len(trip), trip)
	}
	testenv.Eventually(t, 60*time.Second, "the queue full and a read-back failing", func() bool {
		return h.metric("sanigate_violation_readback_queue_full_total", nil) > 0 &&
			h.metric("sanigate_violation_readback_errors_total", nil) > 0
	})
	if n := h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping"}); n != 0 {
		t.Fatalf("illegal_dumping raised %g times before InfluxDB is back", n)
	}
	if err := h.influx.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 120*time.Second, "every late dump raised", func() bool {
		return h.metric("sanigate_violation_readbacks_total", nil) == float64(len(ids))
	})
	if n := h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping", "resolved": "false"}); n != float64(len(ids)) {
		t.Errorf("illegal_dumping handed to the sink %g times, want %d", n, len(ids))
	}
	for _, id := range ids {
		if n := len(deviceCases(t, h, "illegal_dumping", id)); n != 1 {
			t.Errorf("%s: %d illegal_dumping cases, want 1", id, n)
		}
	}
	if n := h.metric("sanigate_violation_late_readings_total", nil); n != 0 {
		t.Errorf("late readings left out: %g, want 0", n)
	}
	if n := h.metric("sanigate_violation_readback_queued", nil); n != 0 {
		t.Errorf("devices still queued: %g", n)
	}
}

// TestReadbackSurvivesRestart: a late dump waits for its read-back while
// InfluxDB is down, and the gateway is stopped meanwhile. The waiting
// readings are in the detectors' saved state: after the restart, with
// InfluxDB back, the dump is raised once.
func TestReadbackSurvivesRestart(t *testing.T) {
	h := lateHarness(t, "violations:\n  replay_window: 10m\n  mark_every: 2m\n", "trk-wait")
	now := time.Now().Truncate(time.Second)
	live := parked(now.Add(-40*time.Minute), now)
	sendBatches(t, h, "trk-wait", 20, live)
	testenv.Eventually(t, 30*time.Second, "the live readings judged", func() bool {
		return h.metric("sanigate_violation_readings_total", nil) == float64(len(live))
	})
	h.influx.Stop()
	trip := tripPoints(t, now.Add(-100*time.Minute))
	sendBatches(t, h, "trk-wait", len(trip), trip)
	testenv.Eventually(t, 60*time.Second, "a read-back failing", func() bool {
		return h.metric("sanigate_violation_readback_errors_total", nil) > 0
	})
	h.stop()
	if err := h.influx.Restart(); err != nil {
		t.Fatal(err)
	}
	h.start()
	dumping := map[string]string{"type": "illegal_dumping", "resolved": "false"}
	defer func() {
		if t.Failed() {
			t.Logf("logs:\n%s", h.logs.String())
		}
	}()
	testenv.Eventually(t, 20*time.Second, "the late dump raised after the restart", func() bool {
		return h.metric("sanigate_violations_raised_total", dumping) >= 1
	})
	if n := h.metric("sanigate_violations_raised_total", dumping); n != 1 {
		t.Errorf("illegal_dumping handed to the sink %g times, want 1", n)
	}
	if n := len(deviceCases(t, h, "illegal_dumping", "trk-wait")); n != 1 {
		t.Errorf("illegal_dumping cases: %d, want 1", n)
	}
}

// TestLateSpanSplit uploads, in one message, two dumps eight and a half
// hours apart, both older than the detectors' memory: more than one
// read-back may judge, so they are judged in two, oldest first; each dump is
// raised once, and the silences between the trips and the live readings are
// judged as if all had come in order.
func TestLateSpanSplit(t *testing.T) {
	h := lateHarness(t, "violations:\n  replay_window: 10m\n  mark_every: 2m\n", "trk-two")
	now := time.Now().Truncate(time.Second)
	live := parked(now.Add(-40*time.Minute), now)
	sendBatches(t, h, "trk-two", 20, live)
	testenv.Eventually(t, 30*time.Second, "the live readings judged", func() bool {
		return h.metric("sanigate_violation_readings_total", nil) == float64(len(live))
	})
	both := append(tripPoints(t, now.Add(-10*time.Hour)), tripPoints(t, now.Add(-100*time.Minute))...)
	sendBatches(t, h, "trk-two", len(both), both)
	testenv.Eventually(t, 60*time.Second, "two read-backs", func() bool {
		return h.metric("sanigate_violation_readbacks_total", nil) == 2
	})
	if n := h.metric("sanigate_violations_raised_total", map[string]string{"type": "illegal_dumping", "resolved": "false"}); n != 2 {
		t.Errorf("illegal_dumping handed to the sink %g times, want 2 (one per dump)", n)
	}
	testenv.Eventually(t, 30*time.Second, "two dumps in InfluxDB", func() bool {
		return len(h.influx.Rows(t, `SELECT "key" FROM "forever"."violation" WHERE "state" = 'raised' AND "type" = 'illegal_dumping' AND "device" = 'trk-two'`)) == 2
	})
	if n := h.metric("sanigate_violation_late_readings_total", nil); n != 0 {
		t.Errorf("late readings left out: %g, want 0", n)
	}
	// The silence after each trip ends where the next readings begin, as
	// if they had come in order: a tracking gap each, and device_offline
	// resolved, none left open.
	query := func(typ string) []map[string]any {
		return h.influx.Rows(t, `SELECT "key", "resolved", "withdrawn" FROM "forever"."violation" WHERE "state" = 'raised' AND "device" = 'trk-two' AND "type" = '`+typ+`'`)
	}
	testenv.Eventually(t, 30*time.Second, "a tracking gap after each trip", func() bool {
		return len(query("tracking_gap")) == 2
	})
	offline := query("device_offline")
	if len(offline) != 2 {
		t.Errorf("device_offline: %v, want one after each trip", offline)
	}
	for _, r := range offline {
		if r["resolved"] != true || r["withdrawn"] != false {
			t.Errorf("device_offline not resolved: %v", r)
		}
	}
}
