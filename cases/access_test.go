package cases

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/violations"
)

type devices []DeviceInfo

func (d devices) Devices() []DeviceInfo { return d }
func (d devices) LastReading(id string) (Reading, bool) {
	if id == "bin-0042" {
		return Reading{Time: time.Date(2026, 11, 27, 9, 55, 0, 0, time.UTC), Fields: map[string]float64{"fill_pct": 96}}, true
	}
	return Reading{}, false
}

var testDevices = devices{
	{ID: "truck-07", Kind: "truck", District: "east", Contractor: "greenclean", Category: "kitchen"},
	{ID: "bin-0042", Kind: "bin", District: "west", Contractor: "greenclean", Category: "kitchen", Lat: 39.857, Lon: 116.31, HasPos: true},
	{ID: "toilet-01", Kind: "toilet", District: "east", Contractor: "cleanloo"},
}

func TestAccessByRole(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{Devices: testDevices})
		// An east case for the enforcement bureau, a west case for the contractor.
		if err := e.svc.Raise(ctx, dumpingAtFarm(e.clock.Now())); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Raise(ctx, binOverflow("b1", e.clock.Now(), false)); err != nil {
			t.Fatal(err)
		}
		all, _ := e.svc.List(ctx, System, Filter{})
		ids := map[string]int64{}
		for _, c := range all.Cases {
			ids[c.District] = c.ID
		}
		east, west := ids["east"], ids["west"]

		sees := map[string][]int64{
			tokCity: {east, west}, tokEast: {east}, tokWest: {west}, tokEnforce: {east}, tokGreenclean: {west},
		}
		for tok, want := range sees {
			var page Page
			if code := e.call(t, tok, "GET", "/api/v1/cases", nil, &page); code != 200 {
				t.Fatalf("list: %d", code)
			}
			var got []int64
			for _, c := range page.Cases {
				got = append(got, c.ID)
			}
			sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
			sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("token %s...: sees %v, want %v", tok[:8], got, want)
			}
			for _, id := range []int64{east, west} {
				code := e.call(t, tok, "GET", fmt.Sprintf("/api/v1/cases/%d", id), nil, nil)
				visible := contains64(want, id)
				if (visible && code != 200) || (!visible && code != 404) {
					t.Errorf("token %s... GET case %d: %d (visible %v)", tok[:8], id, code, visible)
				}
			}
		}

		for _, tc := range []struct {
			name   string
			token  string
			method string
			path   string
			body   any
			want   int
		}{
			{"no token", "", "GET", "/api/v1/cases", nil, 401},
			{"wrong token", "not-a-token", "GET", "/api/v1/cases", nil, 401},
			{"wrong token on an action", "not-a-token", "POST", fmt.Sprintf("/api/v1/cases/%d/accept", east), nil, 401},
			{"no token on kpis", "", "GET", "/api/v1/kpis", nil, 401},
			{"another unit's case", tokGreenclean, "POST", fmt.Sprintf("/api/v1/cases/%d/accept", east), nil, 404},
			{"another unit's case history", tokGreenclean, "GET", fmt.Sprintf("/api/v1/cases/%d/deliveries", east), nil, 404},
			{"another district's case", tokWest, "POST", fmt.Sprintf("/api/v1/cases/%d/reject", east), nil, 404},
			{"no such case", tokCity, "GET", "/api/v1/cases/999999", nil, 404},
			{"a district does not accept", tokEast, "POST", fmt.Sprintf("/api/v1/cases/%d/accept", east), nil, 403},
			{"a unit does not reject", tokEnforce, "POST", fmt.Sprintf("/api/v1/cases/%d/reject", east), nil, 403},
			{"a unit does not transfer", tokEnforce, "POST", fmt.Sprintf("/api/v1/cases/%d/transfer", east), ActionRequest{Unit: "greenclean"}, 403},
			{"the unit accepts its case", tokEnforce, "POST", fmt.Sprintf("/api/v1/cases/%d/accept", east), ActionRequest{Note: "ok"}, 200},
			{"the district comments", tokEast, "POST", fmt.Sprintf("/api/v1/cases/%d/comment", east), ActionRequest{Note: "seen"}, 200},
			{"the contractor accepts its case", tokGreenclean, "POST", fmt.Sprintf("/api/v1/cases/%d/accept", west), nil, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := e.call(t, tc.token, tc.method, tc.path, tc.body, nil); got != tc.want {
					t.Errorf("got %d, want %d", got, tc.want)
				}
			})
		}
		// Every action is attributed to its token's holder.
		c, _ := e.svc.Get(ctx, System, east)
		var actors []string
		for _, h := range c.History[3:] {
			actors = append(actors, string(h.Action)+" by "+h.Actor)
		}
		if got := strings.Join(actors, ", "); got != "accept by east-bureau-crew, comment by east-district-desk" {
			t.Errorf("attribution: %s", got)
		}

		// KPIs and devices are scoped as well.
		var k struct{ KPIs []KPI }
		e.call(t, tokGreenclean, "GET", "/api/v1/kpis?by=unit", nil, &k)
		if len(k.KPIs) != 1 || k.KPIs[0].Unit != "greenclean" {
			t.Errorf("a unit's KPIs: %+v", k.KPIs)
		}
		for tok, want := range map[string]string{tokCity: "bin-0042,toilet-01,truck-07", tokEast: "toilet-01,truck-07", tokGreenclean: "bin-0042,truck-07", tokEnforce: ""} {
			var d struct{ Devices []DeviceView }
			e.call(t, tok, "GET", "/api/v1/devices", nil, &d)
			var got []string
			for _, x := range d.Devices {
				got = append(got, x.ID)
			}
			if strings.Join(got, ",") != want {
				t.Errorf("token %s... devices: %v, want %s", tok[:8], got, want)
			}
		}
		var dv DeviceView
		if code := e.call(t, tokWest, "GET", "/api/v1/devices/bin-0042", nil, &dv); code != 200 || dv.LastReading == nil || dv.LastReading.Fields["fill_pct"] != 96 {
			t.Errorf("device with last reading: %d %+v", code, dv)
		}
		if code := e.call(t, tokWest, "GET", "/api/v1/devices/truck-07", nil, nil); code != 404 {
			t.Errorf("another district's device: %d, want 404", code)
		}
	})
}

func contains64(list []int64, v int64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Two gateways share one store and raise the same violation at once, from
// many goroutines: one case, every repeat counted.
func TestConcurrentRaisersShareOneCase(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		cfg := testConfig(st, "http://127.0.0.1:1/x")
		a := newEnv(t, cfg, Deps{})
		b := newEnv(t, cfg, Deps{})
		const workers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := 0; w < workers; w++ {
			svc := a.svc
			if w%2 == 1 {
				svc = b.svc
			}
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					v := binOverflow(fmt.Sprintf("w%d-%d", w, i), a.clock.Now(), false)
					if err := svc.Raise(ctx, v); err != nil {
						errs <- err
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		page, err := a.svc.List(ctx, System, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Cases) != 1 || page.Cases[0].Count != workers*each {
			var counts []int
			for _, c := range page.Cases {
				counts = append(counts, c.Count)
			}
			t.Fatalf("got %d cases with counts %v, want 1 case counting %d", len(page.Cases), counts, workers*each)
		}
		ds, _ := a.svc.Deliveries(ctx, page.Cases[0].ID)
		_ = ds // greenclean has no webhook in this config: nothing queued
		var n int
		if err := a.svc.st.db.QueryRow(`SELECT COUNT(*) FROM case_history WHERE action = 'dispatch'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("dispatched %d times (err %v), want once", n, err)
		}
	})
}

func TestUnauthorizedHeader(t *testing.T) {
	e := newEnv(t, testConfig(StoreConfig{Driver: SQLite, Path: t.TempDir() + "/c.db"}, "http://127.0.0.1:1/x"), Deps{})
	resp, err := http.Get(e.api.URL + "/api/v1/cases")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	_ = violations.Types
}

// A detector that resumes (after a crash, or a new partition owner reading
// again what the last one had not acknowledged) raises a violation whose
// case was already resolved by data: no second case opens. A new violation
// of the same kind on the same device does open one.
func TestReplayAfterCloseOpensNoCase(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{})
		t0 := e.clock.Now()
		for _, v := range []violations.Violation{
			binOverflow("ovf-1", t0, false), binOverflow("ovf-1", t0, true), // raised, resolved
			binOverflow("ovf-1", t0, false), binOverflow("ovf-1", t0, true), // the same, replayed
		} {
			if err := e.svc.Raise(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		page, err := e.svc.List(ctx, System, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Cases) != 1 || page.Cases[0].State != Closed {
			var states []State
			for _, c := range page.Cases {
				states = append(states, c.State)
			}
			t.Fatalf("got %d cases in states %v, want the one closed case", len(page.Cases), states)
		}
		if err := e.svc.Raise(ctx, binOverflow("ovf-2", t0.Add(time.Hour), false)); err != nil {
			t.Fatal(err)
		}
		if page, _ = e.svc.List(ctx, System, Filter{}); len(page.Cases) != 2 {
			t.Fatalf("got %d cases after a new overflow, want 2", len(page.Cases))
		}
	})
}

// Fencing: once a scope's token is raised, what comes with an older token
// is refused with ErrFenced and files nothing; the holder's raises go on.
func TestFencingRefusesStaleTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{})
		t0 := e.clock.Now()
		old := violations.WithFence(ctx, violations.Fence{Scope: "READINGS/3@1", Token: 5})
		if err := e.svc.Raise(old, binOverflow("ovf-1", t0, false)); err != nil {
			t.Fatal(err)
		}
		// A new owner takes the partition over.
		if err := e.svc.Fence(ctx, violations.Fence{Scope: "READINGS/3@1", Token: 9}); err != nil {
			t.Fatal(err)
		}
		cur := violations.WithFence(ctx, violations.Fence{Scope: "READINGS/3@1", Token: 9})
		if err := e.svc.Raise(cur, binOverflow("ovf-1", t0, true)); err != nil {
			t.Fatal(err)
		}
		// The old owner, back from a pause, raises what it had in hand.
		for _, v := range []violations.Violation{binOverflow("ovf-1", t0, false), binOverflow("ovf-2", t0.Add(time.Hour), false)} {
			if err := e.svc.Raise(old, v); !errors.Is(err, violations.ErrFenced) {
				t.Fatalf("raise of %s under the old token: %v, want ErrFenced", v.Key, err)
			}
		}
		if err := e.svc.Withdraw(old, binOverflow("ovf-1", t0, false), "late"); !errors.Is(err, violations.ErrFenced) {
			t.Fatalf("withdraw under the old token: %v, want ErrFenced", err)
		}
		if err := e.svc.Fence(ctx, violations.Fence{Scope: "READINGS/3@1", Token: 7}); !errors.Is(err, violations.ErrFenced) {
			t.Fatalf("fence with an older token: %v, want ErrFenced", err)
		}
		// Another scope is not concerned.
		if err := e.svc.Raise(violations.WithFence(ctx, violations.Fence{Scope: "READINGS/4@1", Token: 1}), dumpingAtFarm(t0)); err != nil {
			t.Fatal(err)
		}
		page, err := e.svc.List(ctx, System, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range page.Cases {
			got = append(got, fmt.Sprintf("%s:%s", c.Type, c.State))
		}
		sort.Strings(got)
		if len(got) != 2 || got[0] != "bin_overflow:closed" || !strings.HasPrefix(got[1], "illegal_dumping:") {
			t.Fatalf("cases %v, want the overflow closed and the dumping's case", got)
		}
	})
}
