package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
)

// The whole loop through the running gateway: a truck publishes over MQTT
// that it dumped its load at a farm; the detectors raise illegal_dumping; a
// case is filed and dispatched to the district's enforcement unit; a real HTTP
// receiver gets the signed webhook and verifies it; the unit accepts and
// reports it handled through the API; the city office verifies and closes it;
// the violation is in InfluxDB and the KPIs count the closure.
func TestWholeLoopThroughTheGateway(t *testing.T) {
	secret := []byte("north-webhook-secret")
	var mu sync.Mutex
	var got []map[string]any
	var sigErrs []error
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := cases.VerifySignature(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			sigErrs = append(sigErrs, err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		got = append(got, m)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()

	sections := demoPlaces(t) + fmt.Sprintf(`cases:
  units:
    - {id: city-office, name: City office}
    - {id: enforcement-north, name: North enforcement bureau, webhook_url: %q, secret: %q, escalation: city-office}
  dispatch:
    default_unit: city-office
    rules: [{type: illegal_dumping, district: north, unit: enforcement-north}]
  outbox: {retry_min: 100ms, retry_max: 1s, poll: 100ms}
  tokens:
    - {name: office, role: city, token_hash: %q}
    - {name: north-crew, role: unit, unit: enforcement-north, token_hash: %q}
`, rcv.URL+"/hook", secret,
		cases.HashToken("city-token"), cases.HashToken("north-token"))
	h := newHarnessYAML(t, "", sections, func(c *fleet.Config) {})

	c := h.mustConnect("truck-1")
	start := time.Now().Add(-90 * time.Minute).Truncate(time.Second)
	// A buffered upload of the whole trip, as a truck out of coverage sends it.
	publish(t, c, topic("truck-1", "telemetry"), 1, dumpingTrip(start))
	checkLoop(t, h, secret, &mu, &got, &sigErrs)
}

// dumpingTrip is a truck's upload of a trip that starts at start: it drives
// east along lat 39.9935 into farm-north (lon 116.48-116.49), stops, drops
// 1.5 t with the tipper on, and leaves.
func dumpingTrip(start time.Time) string {
	type pt struct {
		lon, speed, load float64
		tipper           bool
	}
	var track []pt
	lon := 116.46
	for i := 0; i < 30; i++ { // 30 km/h: 83 m per 10 s, about 0.00097 degrees
		track = append(track, pt{lon, 30, 4000, false})
		lon += 0.00097
	}
	for i := 0; i < 60; i++ { // ten minutes parked inside the farm
		load := 4000.0
		switch {
		case i >= 10 && i < 20:
			load = 4000 - float64(i-9)*150
		case i >= 20:
			load = 2500
		}
		track = append(track, pt{lon, 0, load, i >= 10 && i < 20})
	}
	for i := 0; i < 30; i++ {
		lon += 0.00097
		track = append(track, pt{lon, 30, 2500, false})
	}
	var batch []string
	for i, p := range track {
		batch = append(batch, fmt.Sprintf(`{"ts":%d,"lat":39.9935,"lon":%.6f,"speed_kmh":%g,"heading_deg":90,"hdop":0.8,"load_kg":%g,"ignition":true,"tipper":%t}`,
			start.Add(time.Duration(i)*10*time.Second).UnixMilli(), p.lon, p.speed, p.load, p.tipper))
	}
	return "[" + join(batch, ",") + "]"
}

func checkLoop(t *testing.T, h *harness, secret []byte, mu *sync.Mutex, got *[]map[string]any, sigErrs *[]error) {

	call := func(token, method, path string, body any, out any) int {
		t.Helper()
		return testenv.CallAPI(t, "http://"+h.g.HTTPAddr(), token, method, path, body, out)
	}
	var page cases.Page
	testenv.Eventually(t, 30*time.Second, "the illegal dumping case", func() bool {
		call("city-token", "GET", "/api/v1/cases?type=illegal_dumping", nil, &page)
		return len(page.Cases) == 1
	})
	cs := page.Cases[0]
	if cs.State != cases.Dispatched || cs.Unit != "enforcement-north" || cs.Severity != "critical" || cs.District != "north" || cs.Site != "farm-north" {
		t.Fatalf("case: state %s unit %s severity %s district %s site %s", cs.State, cs.Unit, cs.Severity, cs.District, cs.Site)
	}
	testenv.Eventually(t, 15*time.Second, "the signed webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(*got) >= 1
	})
	mu.Lock()
	if len(*sigErrs) > 0 || (*got)[0]["event"] != "dispatched" {
		t.Errorf("webhook: %v, signature errors %v", (*got)[0], *sigErrs)
	}
	mu.Unlock()

	path := fmt.Sprintf("/api/v1/cases/%d", cs.ID)
	var after cases.Case
	if code := call("north-token", "POST", path+"/accept", cases.ActionRequest{Note: "crew on the way"}, &after); code != 200 || after.State != cases.Accepted {
		t.Fatalf("accept: %d %s", code, after.State)
	}
	if code := call("north-token", "POST", path+"/handle", cases.ActionRequest{Note: "load recovered, driver fined"}, &after); code != 200 || after.State != cases.Handled {
		t.Fatalf("handle: %d %s", code, after.State)
	}
	pass := true
	if code := call("city-token", "POST", path+"/verify", cases.ActionRequest{Pass: &pass, Note: "inspected"}, &after); code != 200 || after.State != cases.Closed {
		t.Fatalf("verify: %d %s", code, after.State)
	}
	var kpis struct {
		KPIs []cases.KPI `json:"kpis"`
	}
	if code := call("city-token", "GET", "/api/v1/kpis?by=unit", nil, &kpis); code != 200 {
		t.Fatalf("kpis: %d", code)
	}
	closed := 0
	for _, k := range kpis.KPIs {
		if k.Unit == "enforcement-north" {
			closed += k.Closed
		}
	}
	if closed != 1 {
		t.Errorf("KPIs: enforcement-north closed %d, want 1 (%+v)", closed, kpis.KPIs)
	}
	// The violation itself is in InfluxDB, for Grafana.
	testenv.Eventually(t, 15*time.Second, "the violation in InfluxDB", func() bool {
		return len(h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='illegal_dumping'`)) == 1
	})
}

func join(parts []string, sep string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(p)
	}
	return b.String()
}
