package gateway

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// TestReloadGPSLimits: a fix with HDOP 6 is filtered under the default
// limit (5); after a reload that raises max_hdop to 8, applied without a
// restart and not reported as needing one, the truck's next fix with HDOP
// 6 is taken, and its track is kept (a jump from its last good fix is
// still one).
func TestReloadGPSLimits(t *testing.T) {
	h := newHarnessYAML(t, "", reloadSections())
	c := h.mustConnect("truck-1")
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	msg := func(at time.Duration, lat, hdop float64) string {
		return fmt.Sprintf(`{"ts":%d,"lat":%g,"lon":116.35,"speed_kmh":20,"hdop":%g,"load_kg":1000}`, base.Add(at).UnixMilli(), lat, hdop)
	}
	publish(t, c, topic("truck-1", "telemetry"), 1, msg(0, 39.975, 0.8))
	publish(t, c, topic("truck-1", "telemetry"), 1, msg(10*time.Second, 39.9751, 6))
	if got := h.metric("sanigate_gps_fixes_filtered_total", map[string]string{"reason": "hdop"}); got != 1 {
		t.Fatalf("hdop 6 under the default limit: %v filtered, want 1", got)
	}

	h.rewriteConfig(func(s string) string { return s + "gps:\n  max_hdop: 8\n" })
	rep, err := h.g.Reload(context.Background())
	if err != nil || !rep.Applied || slices.Contains(rep.NeedsRestart, "gps") {
		t.Fatalf("reload: %+v, %v; want it applied, gps not needing a restart", rep, err)
	}
	publish(t, c, topic("truck-1", "telemetry"), 1, msg(20*time.Second, 39.9752, 6))
	publish(t, c, topic("truck-1", "telemetry"), 1, msg(30*time.Second, 39.60, 0.8)) // 42 km in 10 s
	testenv.Eventually(t, 10*time.Second, "four truck readings", func() bool { return h.influx.Count(t, "truck", "load_kg", "") == 4 })
	rows := h.influx.Rows(t, `SELECT * FROM "truck" ORDER BY time`)
	if rows[2]["gps_filter"] != nil {
		t.Errorf("hdop 6 after the reload: gps_filter %v, want none", rows[2]["gps_filter"])
	}
	if rows[3]["gps_filter"] != "jump" {
		t.Errorf("a jump after the reload: gps_filter %v, want jump", rows[3]["gps_filter"])
	}
	if got := h.metric("sanigate_gps_fixes_filtered_total", map[string]string{"reason": "hdop"}); got != 1 {
		t.Errorf("hdop filtered %v times in all, want 1", got)
	}
}
