package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/internal/testenv"
)

// The case API is served by the gateway, behind its tokens, and knows the
// devices' latest readings.
func TestAPIThroughTheGateway(t *testing.T) {
	sections := fmt.Sprintf(`cases:
  units:
    - {id: city-office, name: City office}
  dispatch: {default_unit: city-office}
  tokens:
    - {name: office, role: city, token_hash: %q}
`, cases.HashToken("s3cret-token"))
	h := newHarnessYAML(t, "", sections)
	c := h.mustConnect("bin-1")
	ts := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	publish(t, c, topic("bin-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"fill_pct":61.5}`, ts.Format(time.RFC3339Nano)))

	get := func(token, path string) (int, map[string]any) {
		var body map[string]any
		code := testenv.CallAPI(t, "http://"+h.g.HTTPAddr(), token, "GET", path, nil, &body)
		return code, body
	}
	if code, _ := get("", "/api/v1/cases"); code != http.StatusUnauthorized {
		t.Errorf("no token: got %d, want 401", code)
	}
	if code, _ := get("wrong", "/api/v1/cases"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: got %d, want 401", code)
	}
	code, body := get("s3cret-token", "/api/v1/devices/bin-1")
	if code != http.StatusOK {
		t.Fatalf("device: got %d %v", code, body)
	}
	raw, _ := json.Marshal(body)
	var dev struct {
		Device struct {
			ID     string `json:"id"`
			Online bool   `json:"online"`
		} `json:"device"`
		Last struct {
			Time   time.Time          `json:"time"`
			Fields map[string]float64 `json:"fields"`
		} `json:"last_reading"`
	}
	_ = json.Unmarshal(raw, &dev)
	if dev.Last.Fields["fill_pct"] != 61.5 || !dev.Last.Time.Equal(ts) {
		t.Errorf("device bin-1: got %s", raw)
	}
}
