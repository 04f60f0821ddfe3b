package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// Duplicate keys (a second "ts" included), a pickup of a bin the fleet does
// not have, and control or bidirectional characters in a text field are
// refused and counted; nothing of them is stored, while good messages are.
func TestStrictTelemetry(t *testing.T) {
	h := newHarness(t)
	truck, toilet := h.mustConnect("truck-1"), h.mustConnect("toilet-1")
	ts := func(s int) string {
		return time.Now().Add(-time.Duration(100-s) * time.Second).UTC().Format(time.RFC3339Nano)
	}
	old := time.Now().Add(-10 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)
	bad := []struct{ who, channel, reason, payload string }{
		{"toilet-1", "telemetry", "malformed", fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.1,"ts":%q}`, ts(1), old)},
		{"toilet-1", "telemetry", "malformed", fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.1,"nh3_mgm3":9}`, ts(2))},
		{"toilet-1", "telemetry", "malformed", fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.1,"nh3\u005fmgm3":9}`, ts(11))},
		{"toilet-1", "telemetry", "malformed", fmt.Sprintf(`[{"ts":%q,"nh3_mgm3":0.1},{"ts":%q,"ts":%q,"nh3_mgm3":0.2}]`, ts(3), ts(4), ts(5))},
		{"truck-1", "events", "unknown_device", fmt.Sprintf(`{"ts":%q,"event":"pickup","bin":"bin-999","lat":39.91,"lon":116.41}`, ts(6))},
		{"truck-1", "events", "unknown_device", fmt.Sprintf(`{"ts":%q,"event":"pickup","bin":"truck-1","lat":39.91,"lon":116.41}`, ts(7))},
		{"toilet-1", "events", "wrong_type", fmt.Sprintf(`{"ts":%q,"event":"door_forced","door":"A\u202eB"}`, ts(8))},
		{"toilet-1", "events", "wrong_type", fmt.Sprintf(`{"ts":%q,"event":"door_forced","door":"A\u0007"}`, ts(9))},
		{"toilet-1", "events", "wrong_type", fmt.Sprintf(`{"ts":%q,"event":"door_forced","door":"A\u2067B"}`, ts(10))},
	}
	want := map[string]int{}
	for _, b := range bad {
		c := toilet
		if b.who == "truck-1" {
			c = truck
		}
		publish(t, c, topic(b.who, b.channel), 1, b.payload)
		want[b.reason]++
	}
	publish(t, truck, topic("truck-1", "events"), 1, fmt.Sprintf(`{"ts":%q,"event":"pickup","bin":"bin-1","lat":39.91,"lon":116.41}`, ts(20)))
	publish(t, toilet, topic("toilet-1", "events"), 1, fmt.Sprintf(`{"ts":%q,"event":"door_forced","door":"north"}`, ts(21)))
	publish(t, toilet, topic("toilet-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.3}`, ts(22)))
	testenv.Eventually(t, 10*time.Second, "the good messages", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", "") == 1 && len(h.influx.Rows(t, `SELECT "bin" FROM "forever"."event" WHERE "bin" <> ''`)) == 1 &&
			len(h.influx.Rows(t, `SELECT "door" FROM "forever"."event" WHERE "door" <> ''`)) == 1
	})
	if rows := h.influx.Rows(t, `SELECT * FROM "forever"."event"`); len(rows) != 2 {
		t.Errorf("events stored: got %v, want only the two good ones", rows)
	}
	for reason, n := range want {
		if got := h.metric("sanigate_messages_rejected_total", map[string]string{"reason": reason}); got != float64(n) {
			t.Errorf("rejected{reason=%s}: got %v, want %d", reason, got, n)
		}
	}
}
