package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
)

// The console is served at / beside the API, metrics and health; its fleet
// map knows the devices' latest readings, and the case of a dump detected
// in the gateway shows the truck's track and load read back from InfluxDB.
func TestConsoleThroughTheGateway(t *testing.T) {
	sections := demoPlaces(t) + fmt.Sprintf(`cases:
  units:
    - {id: city-office, name: City office}
  dispatch: {default_unit: city-office}
`)
	h := newHarnessYAML(t, "", sections)
	if _, err := h.g.Cases().AddUser(context.Background(), cases.User{Name: "office", Role: cases.RoleCity}, "office-password"); err != nil {
		t.Fatal(err)
	}
	// The trip first: the detectors work in event time, and a reading older
	// than what they have seen is late.
	truck := h.mustConnect("truck-1")
	publish(t, truck, topic("truck-1", "telemetry"), 1, dumpingTrip(time.Now().Add(-90*time.Minute).Truncate(time.Second)))
	c := h.mustConnect("bin-1")
	ts := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	publish(t, c, topic("bin-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"fill_pct":97}`, ts.Format(time.RFC3339Nano)))

	get := consoleLogin(t, h, "office", "office-password")
	var fleet struct {
		Devices []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"devices"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get("/fleet.json")
		if err := json.Unmarshal([]byte(body), &fleet); err != nil {
			t.Fatalf("fleet.json: %v in %s", err, body)
		}
		full := false
		for _, d := range fleet.Devices {
			full = full || (d.ID == "bin-1" && d.Status == "full")
		}
		if full {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bin-1 never shows full on the fleet map: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var data struct {
		Track  [][3]float64 `json:"track"`
		Series []struct {
			Name string `json:"name"`
		} `json:"series"`
	}
	caseData := regexp.MustCompile(`(?s)<script type="application/json" id="case-data">(.*?)</script>`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pg, err := h.g.Cases().List(context.Background(), cases.System, cases.Filter{Type: "illegal_dumping"})
		if err != nil {
			t.Fatal(err)
		}
		code, body := 0, ""
		if len(pg.Cases) == 1 {
			code, body = get(fmt.Sprintf("/cases/%d", pg.Cases[0].ID))
		}
		if m := caseData.FindStringSubmatch(body); code == http.StatusOK && m != nil {
			if err := json.Unmarshal([]byte(m[1]), &data); err != nil {
				t.Fatalf("case data: %v in %s", err, m[1])
			}
			if len(data.Track) >= 100 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no case with the stored track: %d, %d track points", code, len(data.Track))
		}
	}
	hasLoad := false
	for _, s := range data.Series {
		hasLoad = hasLoad || s.Name == "load_kg"
	}
	if !hasLoad {
		t.Errorf("no load curve on the case page: %+v", data.Series)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	r, err := http.Get("http://" + h.g.HTTPAddr() + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("the API answers a request without a token: %d", r.StatusCode)
	}
}

// consoleLogin logs name in to the gateway's console through its form and
// returns a GET on the session.
func consoleLogin(t *testing.T, h *harness, name, pw string) func(path string) (int, string) {
	t.Helper()
	base := "http://" + h.g.HTTPAddr()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		resp, err := cl.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/")
	if code != http.StatusOK || !strings.Contains(body, `action="/login"`) {
		t.Fatalf("/ without a session: %d", code)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)[1]
	resp, err := cl.PostForm(base+"/login", url.Values{"csrf": {csrf}, "name": {name}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("login: %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return get
}

// TestConsoleMapFollowsReload: the console's base map is the places of the
// configuration in force: a reload that adds the sites file adds the sites
// layer, without a restart.
func TestConsoleMapFollowsReload(t *testing.T) {
	demo, err := filepath.Abs("../examples/demo")
	if err != nil {
		t.Fatal(err)
	}
	sections := fmt.Sprintf("places:\n  districts: %s\n", filepath.Join(demo, "districts.geojson")) + reloadSections()
	h := newHarnessYAML(t, "", sections)
	if _, err := h.g.Cases().AddUser(context.Background(), cases.User{Name: "office", Role: cases.RoleCity}, "office-password"); err != nil {
		t.Fatal(err)
	}
	get := consoleLogin(t, h, "office", "office-password")
	layers := func() map[string]json.RawMessage {
		code, body := get("/map/layers.json")
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(body), &m); code != http.StatusOK || err != nil {
			t.Fatalf("layers: %d %v", code, err)
		}
		return m
	}
	if m := layers(); m["districts"] == nil || m["sites"] != nil {
		t.Fatalf("before the reload: layers %v, want districts alone", slices.Collect(maps.Keys(m)))
	}
	h.rewriteConfig(func(s string) string {
		return strings.Replace(s, "places:\n", fmt.Sprintf("places:\n  sites: %s\n", filepath.Join(demo, "sites.geojson")), 1)
	})
	if rep, err := h.g.Reload(context.Background()); err != nil || !rep.Applied {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	if m := layers(); m["districts"] == nil || m["sites"] == nil {
		t.Fatalf("after the reload: layers %v, want districts and sites", slices.Collect(maps.Keys(m)))
	}
}
