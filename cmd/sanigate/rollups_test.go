package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/influxtest"
)

func TestRollupsCommandBackfills(t *testing.T) {
	s := influxtest.Start(t, "sanigate")
	dir := t.TempDir()
	path := filepath.Join(dir, "sanigate.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("influxdb:\n  url: %s\n  bucket: sanigate\ndevices: []\n", s.URL)), 0o600)

	var out, errb bytes.Buffer
	if code := run([]string{"rollups", "-config", path}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	at := time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Minute)
	line := fmt.Sprintf("toilet,device=t1,district=east nh3_mgm3=2.5,people_in=40i %d\n", at.UnixNano())
	resp, err := http.Post(s.URL+"/write?db=sanigate", "text/plain", strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := run([]string{"rollups", "-config", path, "-backfill", "720h"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rows := s.Rows(t, `SELECT "nh3_mgm3", "people_in" FROM "rollup_1m"."toilet"`)
	if len(rows) != 1 || fmt.Sprint(rows[0]["nh3_mgm3"]) != "2.5" || fmt.Sprint(rows[0]["people_in"]) != "40" {
		t.Fatalf("rollups after backfill: %v, want one point with nh3 2.5 and people_in 40", rows)
	}
	t.Log(strings.TrimSpace(out.String()))
}
