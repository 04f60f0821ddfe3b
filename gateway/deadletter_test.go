package gateway

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// A batch holding a line InfluxDB refuses: the good lines are stored, the bad
// one goes to the dead-letter file with the reason, and is counted.
func TestRefusedLineGoesToDeadLetter(t *testing.T) {
	h := newHarness(t)
	now := time.Now().Truncate(time.Second)
	// Someone else already wrote bin.fill_pct as a string, at the very time
	// of our reading (so in its shard, whatever the shard duration and the
	// time of day): our float fill_pct conflicts with the field's type there,
	// and InfluxDB refuses it.
	body := fmt.Sprintf("bin,device=legacy fill_pct=\"full\" %d\n", now.Add(-29*time.Minute).UnixNano())
	resp, err := http.Post(h.influx.URL+"/write?db="+testDB, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("seeding the conflict: %s", resp.Status)
	}
	ts := func(d time.Duration) string { return now.Add(-d).UTC().Format(time.RFC3339Nano) }
	bin := h.mustConnect("bin-1")
	toilet := h.mustConnect("toilet-1")
	// Published together, so they share a batch.
	publish(t, toilet, topic("toilet-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.3}`, ts(30*time.Minute)))
	publish(t, bin, topic("bin-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"fill_pct":55}`, ts(29*time.Minute)))
	publish(t, toilet, topic("toilet-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.4}`, ts(28*time.Minute)))

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("toilet lines %d, dead letters %v, violations %v\nlogs:\n%s", h.influx.Count(t, "toilet", "nh3_mgm3", ""),
				h.metric("sanigate_dead_letters_total", nil), h.influx.Rows(t, `SELECT * FROM "forever"."violation"`), h.logs.String())
		}
	})
	testenv.Eventually(t, 15*time.Second, "the good lines stored and the bad one dead-lettered", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", "") == 2 && h.metric("sanigate_dead_letters_total", nil) == 1
	})
	dl, err := os.ReadFile(filepath.Join(h.cfg.Resolve(h.cfg.Spool.Dir), "dead-letter.lp"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(dl)
	if !strings.Contains(text, "device=bin-1") || !strings.Contains(text, "fill_pct=55") || !strings.Contains(text, "conflict") {
		t.Errorf("dead-letter file:\n%s", text)
	}
	if strings.Contains(text, "toilet") {
		t.Errorf("a good line went to the dead-letter file:\n%s", text)
	}
	// The writer goes on: later readings are stored.
	publish(t, toilet, topic("toilet-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.5}`, ts(27*time.Minute)))
	testenv.Eventually(t, 10*time.Second, "a later reading", func() bool { return h.influx.Count(t, "toilet", "nh3_mgm3", "") == 3 })
}
