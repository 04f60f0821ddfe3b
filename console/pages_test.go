package console

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
)

var rowID = regexp.MustCompile(`<tr data-id="(\d+)"`)
var nextLink = regexp.MustCompile(`href="/cases\?([^"]*)" id="next"`)

func rowIDs(body string) []string {
	var out []string
	for _, m := range rowID.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// pages follows the queue's next links from path and returns every id.
func (c *client) pages(t *testing.T, path string) []string {
	var all []string
	for i := 0; i < 20 && path != ""; i++ {
		code, body := c.get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		all = append(all, rowIDs(body)...)
		path = ""
		if m := nextLink.FindStringSubmatch(body); m != nil {
			q := strings.ReplaceAll(m[1], "&amp;", "&")
			path = "/cases?" + q
		}
	}
	return all
}

func TestQueueFiltersAndPaging(t *testing.T) {
	eachStore(t, func(t *testing.T, st cases.StoreConfig) {
		e := newEnvOn(t, Options{}, st)
		now := time.Now()
		for i := 0; i < 60; i++ {
			if err := e.svc.Raise(context.Background(), binOverflow(fmt.Sprintf("bin-%02d", i), now.Add(-time.Duration(i)*time.Minute))); err != nil {
				t.Fatal(err)
			}
		}
		e.dump(t, "truck-1", now.Add(-time.Hour))
		e.dump(t, "truck-2", now.Add(-time.Hour))
		c := e.client(t)
		c.login("dispatcher")
		_, body := c.get("/cases")
		if ids := rowIDs(body); len(ids) != pageSize || ids[0] != "62" {
			t.Fatalf("first page: %d rows starting %v", len(ids), ids[:1])
		}
		if !strings.Contains(body, `id="count-dispatched">62<`) {
			t.Error("the count of dispatched cases is not 62")
		}
		for _, sort := range []string{"newest", "oldest", "due"} {
			all := c.pages(t, "/cases?sort="+sort)
			seen := map[string]bool{}
			for _, id := range all {
				if seen[id] {
					t.Errorf("sort %s: case %s on two pages", sort, id)
				}
				seen[id] = true
			}
			if len(seen) != 62 {
				t.Errorf("sort %s: %d cases over the pages, want 62", sort, len(seen))
			}
			if sort == "oldest" && all[0] != "1" {
				t.Errorf("oldest first starts at %s", all[0])
			}
		}
		_, body = c.get("/cases?type=illegal_dumping&district=north")
		if ids := rowIDs(body); strings.Join(ids, ",") != "62,61" {
			t.Errorf("dumps in the north: %v", ids)
		}
		_, body = c.get("/cases?state=closed")
		if ids := rowIDs(body); len(ids) != 0 {
			t.Errorf("closed cases: %v", ids)
		}
		code, body := c.get("/cases?state=nonsense&from=yesterday&sort=random")
		if code != http.StatusOK || !strings.Contains(body, "ignored: state, from, sort") {
			t.Errorf("bad filters are not named: %d", code)
		}
		code, _ = c.get("/cases?after=DROP%20TABLE")
		if code != http.StatusOK {
			t.Errorf("bad cursor: %d", code)
		}
	})
}

// readEvent reads the stream until a case event, and returns its id.
func readEvent(t *testing.T, sc *bufio.Scanner) int64 {
	t.Helper()
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var m struct {
				ID   int64  `json:"id"`
				HTML string `json:"html"`
			}
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
			if !strings.Contains(m.HTML, fmt.Sprintf(`data-id="%d"`, m.ID)) {
				t.Errorf("event row %q", m.HTML)
			}
			return m.ID
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
	return 0
}

func TestEventsStreamOnlyWhatTheUserSees(t *testing.T) {
	e := newEnv(t, Options{Poll: 50 * time.Millisecond})
	e.dump(t, "truck-0", time.Now().Add(-2*time.Hour))
	green := e.client(t)
	green.login("green")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/events?since=1", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := green.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	e.dump(t, "truck-1", time.Now().Add(-time.Hour))
	if err := e.svc.Raise(context.Background(), binOverflow("bin-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	if id := readEvent(t, sc); id != 3 {
		t.Errorf("greenclean's first event is case %d, want the bin (3), not the dump (2)", id)
	}
	// Logging out elsewhere ends the stream.
	green.get("/cases")
	green.post("/logout", url.Values{"csrf": {green.csrf}})
	for sc.Scan() {
	}
	if ctx.Err() != nil {
		t.Error("the stream outlived its session")
	}
	// Without a session there is no stream.
	anon, err := http.Get(e.srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	anon.Body.Close()
	if anon.Request.URL.Path != "/login" {
		t.Errorf("anonymous events end at %s", anon.Request.URL.Path)
	}
}

func TestAssessmentCSVAndFleet(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	if err := e.svc.Raise(ctx, binOverflow("bin-7", time.Now())); err != nil {
		t.Fatal(err)
	}
	city := cases.Actor{Name: "d", Role: cases.RoleCity}
	for _, a := range []cases.ActionRequest{{Action: cases.Accept}, {Action: cases.Handle}} {
		if _, err := e.svc.Act(ctx, city, 1, a); err != nil {
			t.Fatal(err)
		}
	}
	pass := true
	if _, err := e.svc.Act(ctx, city, 1, cases.ActionRequest{Action: cases.Verify, Pass: &pass}); err != nil {
		t.Fatal(err)
	}
	c := e.client(t)
	c.login("dispatcher")
	resp, err := c.c.Get(c.base + "/assessment.csv")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %v %s", err, resp.Header.Get("Content-Type"))
	}
	if len(recs) != 2 || recs[0][2] != "unit" || recs[1][2] != "greenclean" || recs[1][5] != "1" || recs[1][11] != "1.0000" {
		t.Errorf("assessment csv: %v", recs)
	}
	if code, body := c.get("/assessment?from=2026-01-01&to=2026-12-31&by=district"); code != 200 || !strings.Contains(body, "<table class=\"kpis\">") {
		t.Errorf("assessment page: %d", code)
	}
	if code, _ := c.get("/assessment?from=last+week"); code != http.StatusBadRequest {
		t.Errorf("bad period: %d", code)
	}

	var fleet struct {
		Devices []fleetDevice `json:"devices"`
	}
	if err := e.svc.Raise(ctx, binOverflow("bin-7", time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		want string
	}{
		{"dispatcher", "bin-7:alarm bin-8:full toilet-1:ok truck-7:ok truck-8:offline"},
		{"north", "bin-8:full toilet-1:ok truck-7:ok"},
		{"green", "bin-7:alarm bin-8:full truck-7:ok truck-8:offline"},
	} {
		u := e.client(t)
		u.login(tc.user)
		resp, err := u.c.Get(u.base + "/fleet.json")
		if err != nil {
			t.Fatal(err)
		}
		fleet.Devices = nil
		err = json.NewDecoder(resp.Body).Decode(&fleet)
		resp.Body.Close()
		var got []string
		for _, d := range fleet.Devices {
			got = append(got, d.ID+":"+d.Status)
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("%s's fleet: %v %v, want %s", tc.user, got, err, tc.want)
		}
	}
}

func TestAccountAndAdmin(t *testing.T) {
	e := newEnv(t, Options{})
	crew := e.client(t)
	crew.login("crew")
	crew.get("/account")
	if code, _ := crew.post("/admin/users", url.Values{"csrf": {crew.csrf}, "name": {"mallory"}, "role": {"city"},
		"password": {"mallory-password"}}); code != http.StatusForbidden {
		t.Errorf("a unit user adds a user: %d", code)
	}
	if code, _ := crew.get("/admin/users"); code != http.StatusForbidden {
		t.Errorf("a unit user opens the users page: %d", code)
	}
	if code, _ := crew.post("/account/password", url.Values{"csrf": {crew.csrf}, "old": {"wrong"}, "new": {"new-crew-password"}}); code != http.StatusForbidden {
		t.Errorf("password change with a wrong old password: %d", code)
	}
	if code, _ := crew.post("/account/password", url.Values{"csrf": {crew.csrf}, "old": {passwordOf("crew")}, "new": {"new-crew-password"}}); code != http.StatusOK {
		t.Errorf("password change: %d", code)
	}
	if code, _ := e.client(t).tryLogin("crew", passwordOf("crew")); code != http.StatusUnauthorized {
		t.Errorf("old password still works: %d", code)
	}
	if code, _ := e.client(t).tryLogin("crew", "new-crew-password"); code != http.StatusOK {
		t.Errorf("new password: %d", code)
	}
	crew.post("/account/lang", url.Values{"csrf": {crew.csrf}, "lang": {"zh"}})
	if _, body := crew.get("/cases"); !strings.Contains(body, `<html lang="zh-CN">`) || !strings.Contains(body, "案件队列") {
		t.Error("the language switch did not take")
	}

	admin := e.client(t)
	admin.login("dispatcher")
	admin.get("/admin/users")
	if code, body := admin.post("/admin/users", url.Values{"csrf": {admin.csrf}, "name": {"south"}, "role": {"district"},
		"district": {"south"}, "lang": {"en"}, "password": {"south-password-1"}}); code != http.StatusOK || !strings.Contains(body, "south") {
		t.Errorf("admin adds a user: %d", code)
	}
	if code, body := admin.post("/admin/users", url.Values{"csrf": {admin.csrf}, "name": {"x"}, "role": {"unit"},
		"unit": {"nobody"}, "lang": {"en"}, "password": {"long-enough-pw"}}); code != http.StatusBadRequest || !strings.Contains(body, "unknown unit") {
		t.Errorf("admin adds a user of an unknown unit: %d", code)
	}
	south := e.client(t)
	if code, body := south.tryLogin("south", "south-password-1"); code != http.StatusOK || strings.Contains(body, `href="/admin/users"`) {
		t.Errorf("the new district user: %d, or offered the users page", code)
	}
}

func TestCasePageDeadlineInWorkingTime(t *testing.T) {
	cal, err := fleet.CalendarConfig{WorkingHours: "00:00-24:00", Workdays: nil}.Build(time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Calendar: cal})
	e.dump(t, "truck-1", time.Now().Add(-time.Hour))
	c := e.client(t)
	c.login("dispatcher")
	_, body := c.get("/cases/1")
	if !strings.Contains(body, "of working time left") || !strings.Contains(body, "left;") {
		t.Errorf("the close deadline does not say what is left:\n%s", regexp.MustCompile(`(?s)id="close-left">[^<]*`).FindString(body))
	}
}
