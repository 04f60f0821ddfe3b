package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// TestAddedDeviceNeverReportingIsOffline: a toilet registered through the
// admin API (expected every second) that never connects is stored as
// device_offline, saying it never reported, and a case is filed for it;
// a toilet that reports at once is not.
func TestAddedDeviceNeverReportingIsOffline(t *testing.T) {
	h := newHarnessYAML(t, "", reloadSections())
	for _, id := range []string{"silent-1", "talker-1"} {
		add := map[string]any{"id": id, "kind": "toilet", "class": 2, "contractor": "greenclean", "interval": "1s",
			"lat": 39.9, "lon": 116.4}
		var added struct{ Secret string }
		if code := h.api(adminToken, "POST", "/api/v1/devices", add, &added); code != http.StatusCreated {
			t.Fatalf("add %s: %d", id, code)
		}
		if id == "talker-1" {
			c := h.mustWatch(id, added.Secret)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // a reading a second until the test ends
				defer close(done)
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for i := 0; i < 120; i++ {
					c.c.Publish(topic(id, "telemetry"), 1, false, fmt.Sprintf(`{"ts":%d,"temp_c":18,"nh3_mgm3":0.1,"h2s_mgm3":0.002}`, time.Now().UnixMilli()))
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()
			t.Cleanup(func() { close(stop); <-done })
		}
	}
	var rows []map[string]any
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("violations: %v\nlogs:\n%s", h.influx.Rows(t, `SELECT * FROM "forever"."violation"`), h.logs.String())
		}
	})
	testenv.Eventually(t, 30*time.Second, "device_offline of silent-1 stored", func() bool {
		rows = h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='device_offline' AND "device"='silent-1'`)
		return len(rows) >= 1
	})
	if s, _ := rows[0]["summary"].(string); !strings.Contains(s, "never reported") {
		t.Errorf("summary %q", s)
	}
	var list struct {
		Cases []struct {
			Type, Device string
		}
	}
	testenv.Eventually(t, 10*time.Second, "a case for silent-1", func() bool {
		if code := h.api(cityToken, "GET", "/api/v1/cases?type=device_offline", nil, &list); code != http.StatusOK {
			return false
		}
		for _, c := range list.Cases {
			if c.Device == "silent-1" {
				return true
			}
		}
		return false
	})
	if rows := h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='device_offline' AND "device"='talker-1'`); len(rows) != 0 {
		t.Errorf("talker-1 reports every second, yet: %v", rows)
	}
}
