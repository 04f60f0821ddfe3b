package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/influxtest"
)

func policies(t *testing.T, s *influxtest.Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range s.Rows(t, `SHOW RETENTION POLICIES ON "sanigate"`) {
		def := ""
		if r["default"] == true {
			def = " default"
		}
		out[fmt.Sprint(r["name"])] = fmt.Sprint(r["duration"]) + def
	}
	return out
}

func rollupQueries(t *testing.T, s *influxtest.Server) []string {
	t.Helper()
	res, err := s.Query("SHOW CONTINUOUS QUERIES")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, series := range res {
		if series.Name != "sanigate" {
			continue
		}
		for _, r := range series.Rows() {
			names = append(names, fmt.Sprint(r["name"]))
		}
	}
	return names
}

func TestRetentionLayoutIsKeptIdempotently(t *testing.T) {
	s := influxtest.Start(t, "sanigate")
	ctx := context.Background()
	a := &InfluxAdmin{URL: s.URL, Database: "sanigate"}
	if err := a.Ensure(ctx, DefaultRetention()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"autogen": "0s", "raw": "2160h0m0s default", "rollup_1m": "17472h0m0s", "forever": "0s"}
	if got := policies(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("policies: got %v, want %v", got, want)
	}
	cqs := rollupQueries(t, s)
	if len(cqs) != len(RollupKinds) {
		t.Fatalf("continuous queries: got %v, want one per kind %v", cqs, RollupKinds)
	}
	for _, kind := range RollupKinds {
		if !strings.Contains(strings.Join(cqs, " "), "sanigate_rollup_1m_"+kind+"_") {
			t.Errorf("no rollup query for %s in %v", kind, cqs)
		}
	}

	// Again: nothing changes. With a shorter raw period: altered in place.
	if err := a.Ensure(ctx, DefaultRetention()); err != nil {
		t.Fatal(err)
	}
	if got := rollupQueries(t, s); fmt.Sprint(got) != fmt.Sprint(cqs) {
		t.Errorf("second run changed the continuous queries: %v, then %v", cqs, got)
	}
	r := DefaultRetention()
	r.Raw = "30d"
	if err := a.Ensure(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := policies(t, s)["raw"]; got != "720h0m0s default" {
		t.Errorf("raw after the change: %s, want 720h0m0s default", got)
	}

	for _, bad := range []Retention{{Raw: "90 days", Rollup: "104w", Forever: "INF"}, {Raw: "30m", Rollup: "1w", Forever: "INF"}} {
		if err := a.Ensure(ctx, bad); err == nil {
			t.Errorf("Ensure(%+v) accepted it", bad)
		}
	}
}

// Eighty days of bin readings, two a day in one minute: the rollup holds
// one point per day with the minute's mean, and a 90-day query over the
// rollup policy reads them all.
func TestRollupServesNinetyDays(t *testing.T) {
	s := influxtest.Start(t, "sanigate")
	ctx := context.Background()
	a := &InfluxAdmin{URL: s.URL, Database: "sanigate"}
	if err := a.Ensure(ctx, DefaultRetention()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	var lines bytes.Buffer
	for d := 1; d <= 80; d++ {
		at := now.Add(-time.Duration(d) * 24 * time.Hour)
		fmt.Fprintf(&lines, "bin,device=bin-1,district=east fill_pct=%d,compactions=%di %d\n", d, 100+d, at.UnixNano())
		fmt.Fprintf(&lines, "bin,device=bin-1,district=east fill_pct=%d,compactions=%di %d\n", d+10, 200+d, at.Add(30*time.Second).UnixNano())
	}
	resp, err := http.Post(s.URL+"/write?db=sanigate&precision=ns", "text/plain", &lines)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write: %s", resp.Status)
	}
	if n := len(s.Rows(t, `SELECT * FROM "raw"."bin"`)); n != 160 {
		t.Fatalf("raw readings: %d, want 160 (the default policy is raw)", n)
	}
	if err := a.Backfill(ctx, now.Add(-90*24*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	rows := s.Rows(t, `SELECT "fill_pct", "compactions", "device", "district" FROM "rollup_1m"."bin" WHERE time > now() - 90d ORDER BY time DESC`)
	if len(rows) != 80 {
		t.Fatalf("rollup points over 90 days: %d, want 80 (one minute a day)", len(rows))
	}
	for i, r := range rows {
		d := i + 1
		fill, _ := r["fill_pct"].(json.Number).Float64()
		comp, _ := r["compactions"].(json.Number).Int64()
		if fill != float64(d)+5 || comp != int64(200+d) || r["device"] != "bin-1" || r["district"] != "east" {
			t.Fatalf("day -%d: got %v, want fill_pct %d (mean), compactions %d (max), tags kept", d, r, d+5, 200+d)
		}
	}
}

func TestLineMeasurementAndRoute(t *testing.T) {
	route := RouteBucket("sanigate")
	for _, c := range []struct{ line, m, bucket string }{
		{"bin,device=b1 fill_pct=3 1", "bin", ""},
		{"violation,type=x n=1 1", "violation", "sanigate/forever"},
		{"case_kpi,unit=u v=1 1", "case_kpi", "sanigate/forever"},
		{"event,device=b1 x=1 1", "event", "sanigate/forever"},
		{`odd\ name,a=b x=1 1`, `odd\ name`, ""},
		{"case v=1 1", "case", "sanigate/forever"},
	} {
		m := lineMeasurement([]byte(c.line))
		if m != c.m || route(m) != c.bucket {
			t.Errorf("%q: got measurement %q to %q, want %q to %q", c.line, m, route(m), c.m, c.bucket)
		}
	}
}
