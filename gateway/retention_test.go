package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

func TestRetentionLayoutAfterStart(t *testing.T) {
	h := newHarness(t, func(c *fleet.Config) { c.InfluxDB.Retention.Raw = "60d" })
	got := map[string]string{}
	for _, r := range h.influx.Rows(t, fmt.Sprintf("SHOW RETENTION POLICIES ON %q", testDB)) {
		got[fmt.Sprint(r["name"])] = fmt.Sprintf("%v %v", r["duration"], r["default"])
	}
	want := map[string]string{"autogen": "0s false", "raw": "1440h0m0s true", "rollup_1m": "17472h0m0s false", "forever": "0s false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("retention policies after start: got %v, want %v", got, want)
	}
	res, err := h.influx.Query("SHOW CONTINUOUS QUERIES")
	if err != nil {
		t.Fatal(err)
	}
	var cqs []string
	for _, s := range res {
		if s.Name == testDB {
			for _, r := range s.Rows() {
				cqs = append(cqs, fmt.Sprint(r["name"]), fmt.Sprint(r["query"]))
			}
		}
	}
	all := strings.Join(cqs, "\n")
	for _, kind := range telemetry.RollupKinds {
		if !strings.Contains(all, fmt.Sprintf(`INTO %s.rollup_1m.%s`, testDB, kind)) {
			t.Errorf("no rollup into rollup_1m.%s among:\n%s", kind, all)
		}
	}
}

func TestRetentionUnmanagedWhenTheBucketNamesAPolicy(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", nil)
	cfg.InfluxDB.Bucket = "sanigate/autogen"
	if _, managed, err := RetentionOf(cfg); err != nil || managed {
		t.Errorf("bucket with a policy: managed %v, err %v; want unmanaged", managed, err)
	}
	cfg.InfluxDB.Bucket = "sanigate"
	cfg.InfluxDB.Retention.Raw = "ninety days"
	if _, _, err := RetentionOf(cfg); err == nil || !strings.Contains(err.Error(), "retention.raw") {
		t.Errorf("bad duration: err %v, want a retention.raw problem", err)
	}
}
