package dashboards

import (
	"fmt"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/violations"
)

// A violation's raise and its resolution are both kept in InfluxDB: the
// resolve point does not overwrite what the raise point said, the raise
// point says it is resolved, and counting "count" counts it once.
func TestViolationRaiseAndResolveBothKept(t *testing.T) {
	s := influxtest.Start(t, "sanigate")
	if _, err := s.Query(`CREATE RETENTION POLICY "forever" ON "sanigate" DURATION INF REPLICATION 1`); err != nil {
		t.Fatal(err)
	}
	v := violations.Violation{Key: "bin_overflow/bin-0001/1", Type: violations.BinOverflow, Severity: violations.Minor,
		Device: "bin-0001", Kind: "bin", District: "north", Start: time.Unix(1_790_000_000, 0),
		End: time.Unix(1_790_007_200, 0), Summary: "fill 95 % since 08:00", Lat: 39.9, Lon: 116.4, HasPos: true}
	lines := violations.AppendLine(nil, &v)
	v.Resolved, v.Summary = true, "emptied after 2h"
	lines = violations.AppendLine(lines, &v)
	write(t, s, lines)

	rows := s.Rows(t, `SELECT "summary", "resolved", "state" FROM "forever"."violation" ORDER BY time`)
	if len(rows) != 2 {
		t.Fatalf("got %d points, want 2: %v", len(rows), rows)
	}
	raise, resolve := rows[0], rows[1]
	if raise["state"] != "raised" || raise["summary"] != "fill 95 % since 08:00" || raise["resolved"] != true {
		t.Errorf("raise point: %v", raise)
	}
	if resolve["state"] != "resolved" || resolve["summary"] != "emptied after 2h" || resolve["resolved"] != true {
		t.Errorf("resolve point: %v", resolve)
	}
	if n := s.Rows(t, `SELECT count("count") FROM "forever"."violation"`); len(n) != 1 || fmt.Sprint(n[0]["count"]) != "1" {
		t.Errorf(`count("count") = %v, want 1`, n)
	}
	if open := s.Rows(t, `SELECT "lat" FROM "forever"."violation" WHERE "resolved" = false`); len(open) != 0 {
		t.Errorf("open violations: %v, want none", open)
	}
}
