package dashboards

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/telemetry"
)

// A 90-day panel reads the rollups: with eighty days of raw bin readings and
// no rollups it draws nothing; once the rollups are computed it draws every
// day. And the dashboards' policy names are the gateway's.
func TestLongRangePanelsReadTheRollups(t *testing.T) {
	if rpRollup != telemetry.RPRollup || rpForever != telemetry.RPForever {
		t.Fatalf("policies %s, %s; the gateway keeps %s, %s", rpRollup, rpForever, telemetry.RPRollup, telemetry.RPForever)
	}
	for _, m := range telemetry.ForeverMeasurements {
		if !foreverMeasurements[m] {
			t.Errorf("the gateway writes %s to %s; the dashboards read it from the default policy", m, rpForever)
		}
	}

	s := influxtest.Start(t, "sanigate")
	ctx := context.Background()
	admin := &telemetry.InfluxAdmin{URL: s.URL, Database: "sanigate"}
	if err := admin.Ensure(ctx, telemetry.DefaultRetention()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	var lines bytes.Buffer
	for d := 0; d < 80; d++ {
		at := now.Add(-time.Duration(d)*24*time.Hour - time.Hour)
		fmt.Fprintf(&lines, "bin,device=bin-1,district=east,contractor=c,category=kitchen fill_pct=%d,contamination_pct=5 %d\n", d%100, at.UnixNano())
	}
	writeRP(t, s, telemetry.RPRaw, lines.Bytes())

	var q string
	for _, p := range Bins().Panels {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Query, `"rollup_1m"."bin"`) && strings.Contains(tg.Query, "fill_pct") {
				if p.TimeFrom != "90d" {
					t.Errorf("panel %q reads rollups over %q, want 90d", p.Title, p.TimeFrom)
				}
				q = tg.Query
			}
		}
	}
	if q == "" {
		t.Fatal("the bins dashboard has no long-range fill panel on the rollups")
	}
	vars := map[string]varValue{}
	all := map[string]string{}
	for _, name := range []string{"district", "contractor", "category", "device"} {
		vars[name], all[name] = varValue{all: true}, ".*"
	}
	filled, err := expand(q, vars, all, now.Add(-90*24*time.Hour), now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Rows(t, filled)); n != 0 {
		t.Fatalf("before the rollups: %d rows, want none (the panel must not read raw readings)", n)
	}
	if err := admin.Backfill(ctx, now.Add(-90*24*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	rows := s.Rows(t, filled)
	if len(rows) < 80 {
		t.Fatalf("after the rollups: %d daily points over 90 days, want at least 80:\n%s", len(rows), filled)
	}
	t.Logf("90-day query on the rollups: %d daily points\n%s", len(rows), filled)
}
