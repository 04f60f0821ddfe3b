package cases

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/violations"
)

// dumpingAtFarm is what the illegal-dumping detector raises when a kitchen
// waste truck drops 1.2 t at a livestock farm in the east district.
func dumpingAtFarm(at time.Time) violations.Violation {
	return violations.Violation{
		Key: "illegal_dumping/truck-07/" + at.Format(time.RFC3339), Type: violations.IllegalDumping,
		Severity: violations.Critical, Device: "truck-07", Kind: "truck",
		Start: at.Add(-8 * time.Minute), End: at, Lat: 39.931, Lon: 116.502, HasPos: true,
		District: "east", Contractor: "greenclean", Category: "kitchen", Site: "farm-3",
		Summary: "load fell 1200 kg in 8 min while stopped inside farm farm-3",
		Evidence: []violations.Evidence{
			{Time: at.Add(-8 * time.Minute), Device: "truck-07", Fields: map[string]float64{"load_kg": 4300, "speed_kmh": 0}},
			{Time: at, Device: "truck-07", Fields: map[string]float64{"load_kg": 3100, "speed_kmh": 0}},
		},
	}
}

func TestWholeLoop(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, cst)} // a Friday
		rcv := newReceiver(t, clock.Now)
		e := newEnv(t, testConfig(st, rcv.srv.URL+"/hooks/cases"), Deps{Clock: clock.Now})
		e.clock = clock

		// A truck dumps at a farm: the detector raises, the case is filed
		// and dispatched to the east district's enforcement unit.
		if err := e.svc.Raise(ctx, dumpingAtFarm(clock.Now())); err != nil {
			t.Fatal(err)
		}
		var page Page
		if code := e.call(t, tokCity, "GET", "/api/v1/cases?type=illegal_dumping", nil, &page); code != 200 || len(page.Cases) != 1 {
			t.Fatalf("list: got %d with %d cases, want 200 with 1", code, len(page.Cases))
		}
		c := page.Cases[0]
		if c.State != Dispatched || c.Unit != "enforcement-east" || c.Site != "farm-3" || c.Severity != "critical" {
			t.Fatalf("got state %s unit %s site %s severity %s, want dispatched to enforcement-east at farm-3, critical", c.State, c.Unit, c.Site, c.Severity)
		}
		// Deadlines in working time: 1 h to accept, 8 h to close, from 10:00 Friday.
		if want := time.Date(2026, 11, 27, 11, 0, 0, 0, cst); !c.AcceptDue.Equal(want) {
			t.Errorf("accept due %v, want %v", c.AcceptDue.In(cst), want)
		}
		if want := time.Date(2026, 11, 27, 18, 0, 0, 0, cst); !c.CloseDue.Equal(want) {
			t.Errorf("close due %v, want %v", c.CloseDue.In(cst), want)
		}

		// The signed webhook reaches a real HTTP receiver, which verifies it.
		if n, err := e.svc.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("deliver: %d delivered, err %v; want 1", n, err)
		}
		got := rcv.received()
		if len(got) != 1 || got[0].Event != "dispatched" || got[0].Case.ID != c.ID || got[0].Case.State != Dispatched || got[0].Case.Site != "farm-3" {
			t.Fatalf("receiver got %+v (signature errors %v), want one dispatched notification of case %d", got, rcv.sigErrors(), c.ID)
		}
		if got[0].Delivery == 0 {
			t.Error("notification carries no delivery id")
		}

		// The unit accepts and reports it handled through the API.
		clock.Advance(20 * time.Minute)
		var after Case
		path := fmt.Sprintf("/api/v1/cases/%d", c.ID)
		if code := e.call(t, tokEnforce, "POST", path+"/accept", ActionRequest{Note: "crew on the way"}, &after); code != 200 || after.State != Accepted {
			t.Fatalf("accept: got %d, state %s; want 200, accepted", code, after.State)
		}
		clock.Advance(2 * time.Hour)
		if code := e.call(t, tokEnforce, "POST", path+"/handle", ActionRequest{Note: "waste removed, driver fined"}, &after); code != 200 || after.State != Handled {
			t.Fatalf("handle: got %d, state %s; want 200, handled", code, after.State)
		}
		// The unit may not verify its own work.
		pass := true
		if code := e.call(t, tokEnforce, "POST", path+"/verify", ActionRequest{Pass: &pass}, nil); code != 403 {
			t.Fatalf("unit verifying: got %d, want 403", code)
		}
		clock.Advance(time.Hour)
		if code := e.call(t, tokCity, "POST", path+"/verify", ActionRequest{Pass: &pass, Note: "site inspected"}, &after); code != 200 || after.State != Closed {
			t.Fatalf("verify: got %d, state %s; want 200, closed", code, after.State)
		}
		if after.Open || after.ClosedAt.IsZero() {
			t.Errorf("closed case: open %v closed_at %v", after.Open, after.ClosedAt)
		}

		// Full history, attributed to the token holders.
		var full Case
		e.call(t, tokCity, "GET", path, nil, &full)
		var steps []string
		for _, h := range full.History {
			steps = append(steps, fmt.Sprintf("%s:%s>%s by %s", h.Action, h.From, h.To, h.Actor))
		}
		want := []string{
			"report:>reported by detector",
			"file:reported>filed by system",
			"dispatch:filed>dispatched by system",
			"accept:dispatched>accepted by east-bureau-crew",
			"handle:accepted>handled by east-bureau-crew",
			"verify:handled>closed by city-office-desk",
		}
		if strings.Join(steps, "\n") != strings.Join(want, "\n") {
			t.Errorf("history:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
		}
		if len(full.Evidence) != 1 || len(full.Evidence[0].Items) != 2 {
			t.Errorf("evidence: got %+v, want one raise with two readings", full.Evidence)
		}

		// The KPIs show it: due today, closed on time, 20 min to accept.
		var k struct{ KPIs []KPI }
		if code := e.call(t, tokCity, "GET", "/api/v1/kpis?from=2026-11-27&to=2026-11-28&by=unit", nil, &k); code != 200 {
			t.Fatalf("kpis: %d", code)
		}
		var unit *KPI
		for i := range k.KPIs {
			if k.KPIs[i].Unit == "enforcement-east" {
				unit = &k.KPIs[i]
			}
		}
		if unit == nil || unit.Due != 1 || unit.Closed != 1 || unit.ClosedOnTime != 1 || unit.ClosureRate != 1 || unit.OnTimeRate != 1 ||
			unit.MeanAcceptS != 1200 || unit.MeanCloseS != (3*time.Hour+20*time.Minute).Seconds() {
			t.Fatalf("kpis of enforcement-east: got %+v", unit)
		}

		// Case events went to the point writer with the dashboards' schema.
		var actions []string
		for _, l := range e.points.all() {
			if strings.HasPrefix(l, "case,") {
				tags := strings.Split(strings.SplitN(l, " ", 2)[0], ",")
				for _, tg := range tags {
					if a, ok := strings.CutPrefix(tg, "action="); ok {
						actions = append(actions, a)
					}
				}
				if !strings.Contains(l, fmt.Sprintf(`case_id="%d",count=1i,overdue=false,elapsed_s=`, c.ID)) {
					t.Errorf("case point without its fields: %s", l)
				}
			}
		}
		if got := strings.Join(actions, ","); got != "filed,dispatched,accepted,handled,closed" {
			t.Errorf("case events: got %s, want filed,dispatched,accepted,handled,closed", got)
		}
		lines, err := e.svc.KPILines(ctx, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		wantKPI := "case_kpi,district=east,period=day,unit=enforcement-east due=1i,closed=1i,closed_on_time=1i,reworked=0i,extended=0i,open=0i,overdue=0i,recurrences=0i,closure_rate=1,on_time_rate=1,rework_rate=0,extension_rate=0,mean_accept_s=1200,mean_close_s=12000 " +
			fmt.Sprint(time.Date(2026, 11, 27, 0, 0, 0, 0, cst).UnixNano())
		if !strings.Contains(string(lines), wantKPI) {
			t.Errorf("case_kpi lines:\n%s\nwant a line:\n%s", lines, wantKPI)
		}
	})
}

// binOverflow is what the overflow detector raises for bin-0042.
func binOverflow(key string, at time.Time, resolved bool) violations.Violation {
	v := violations.Violation{
		Key: key, Type: violations.BinOverflow, Severity: violations.Minor, Device: "bin-0042", Kind: "bin",
		Start: at.Add(-2 * time.Hour), End: at, Lat: 39.857, Lon: 116.31, HasPos: true, District: "west",
		Contractor: "greenclean", Category: "kitchen", Summary: "fill 96% for 2 h",
		Evidence: []violations.Evidence{{Time: at, Device: "bin-0042", Fields: map[string]float64{"fill_pct": 96}}},
	}
	if resolved {
		v.Resolved = true
		v.Summary = "bin emptied"
		v.Evidence = []violations.Evidence{{Time: at, Device: "bin-0042", Event: "emptied", Fields: map[string]float64{"fill_pct": 4}}}
	}
	return v
}

func TestBinOverflowMergesAndClosesByData(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/unused"), Deps{})
		t0 := e.clock.Now()
		if err := e.svc.Raise(ctx, binOverflow("ovf-1", t0, false)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Hour)
		if err := e.svc.Raise(ctx, binOverflow("ovf-2", t0.Add(time.Hour), false)); err != nil {
			t.Fatal(err)
		}
		// A replay of the first raise (the detector restarted from its
		// cursor) changes nothing.
		if err := e.svc.Raise(ctx, binOverflow("ovf-1", t0, false)); err != nil {
			t.Fatal(err)
		}
		page, err := e.svc.List(ctx, System, Filter{Type: violations.BinOverflow})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Cases) != 1 {
			t.Fatalf("got %d cases, want 1 (a repeat merges)", len(page.Cases))
		}
		c := page.Cases[0]
		if c.Count != 2 || !c.LastSeen.Equal(t0.Add(time.Hour)) || c.Unit != "greenclean" || c.State != Dispatched {
			t.Fatalf("got count %d last seen %v unit %s state %s; want 2, %v, greenclean, dispatched", c.Count, c.LastSeen, c.Unit, c.State, t0.Add(time.Hour))
		}

		// The bin is emptied: the detector raises it resolved, and the case
		// closes by itself with the proving reading in its history.
		e.clock.Advance(30 * time.Minute)
		if err := e.svc.Raise(ctx, binOverflow("ovf-2", e.clock.Now(), true)); err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Get(ctx, System, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != Closed || !got.VerifiedByData || got.Open {
			t.Fatalf("got state %s verified_by_data %v open %v; want closed by data", got.State, got.VerifiedByData, got.Open)
		}
		last := got.History[len(got.History)-1]
		if last.Action != Resolve || last.Actor != "data" || len(last.Evidence) != 1 || last.Evidence[0].Event != "emptied" {
			t.Fatalf("last history entry %+v, want a resolve by data with the emptied reading", last)
		}

		// It overflows again: a new case, counted as a recurrence.
		e.clock.Advance(5 * time.Hour)
		if err := e.svc.Raise(ctx, binOverflow("ovf-3", e.clock.Now(), false)); err != nil {
			t.Fatal(err)
		}
		page, _ = e.svc.List(ctx, System, Filter{Type: violations.BinOverflow, Open: ptr(true)})
		if len(page.Cases) != 1 || page.Cases[0].ID == c.ID || page.Cases[0].Recurrence != 1 {
			t.Fatalf("after a new overflow: %+v, want one new open case with recurrence 1", page.Cases)
		}
		k, err := e.svc.KPIs(ctx, System, KPIQuery{By: "unit"})
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 1 || k[0].Unit != "greenclean" || k[0].Recurrences != 1 || k[0].Closed != 1 || k[0].Open != 1 {
			t.Fatalf("kpis: %+v", k)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestWebhookReceiverDownThenUp(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, cst)}
		rcv := newReceiver(t, clock.Now)
		e := newEnv(t, testConfig(st, rcv.srv.URL), Deps{Clock: clock.Now})
		rcv.setDown(true)

		if err := e.svc.Raise(ctx, dumpingAtFarm(clock.Now())); err != nil {
			t.Fatal(err)
		}
		// Down for an hour: the outbox keeps trying, with growing gaps.
		end := clock.Now().Add(time.Hour)
		for clock.Now().Before(end) {
			if _, err := e.svc.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
		}
		page, _ := e.svc.List(ctx, System, Filter{})
		ds, err := e.svc.Deliveries(ctx, page.Cases[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || !ds[0].DeliveredAt.IsZero() {
			t.Fatalf("deliveries while down: %+v", ds)
		}
		failed := len(ds[0].Attempts)
		// 2s, 4s, ... 256s, then every 5 min: 8 attempts in the first 4.3 min and about 11 more in the hour.
		if failed < 15 || failed > 25 {
			t.Errorf("got %d attempts in an hour, want about 19 (exponential backoff to 5 min)", failed)
		}
		for i, a := range ds[0].Attempts {
			if a.OK || a.Status != 503 {
				t.Fatalf("attempt %d: %+v, want a failure with 503", i, a)
			}
		}

		rcv.setDown(false)
		for i := 0; i < 400 && len(rcv.received()) == 0; i++ {
			clock.Advance(time.Second)
			if _, err := e.svc.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := rcv.received(); len(got) != 1 || got[0].Event != "dispatched" {
			t.Fatalf("after the receiver came back: got %+v, want the dispatch notification", got)
		}
		ds, _ = e.svc.Deliveries(ctx, page.Cases[0].ID)
		if ds[0].DeliveredAt.IsZero() || len(ds[0].Attempts) != failed+1 || !ds[0].Attempts[failed].OK {
			t.Fatalf("delivery record: delivered %v with %d attempts, want delivered after %d failures", ds[0].DeliveredAt, len(ds[0].Attempts), failed)
		}
		// Nothing is sent again once delivered.
		clock.Advance(time.Hour)
		if n, _ := e.svc.DeliverDue(ctx); n != 0 {
			t.Errorf("delivered %d more after success, want 0", n)
		}
		rcv.mu.Lock()
		hits := rcv.hits
		rcv.mu.Unlock()
		if hits != failed+1 {
			t.Errorf("receiver saw %d requests, want one per recorded attempt (%d)", hits, failed+1)
		}
		if errs := rcv.sigErrors(); len(errs) > 0 {
			t.Errorf("signature errors: %v", errs)
		}
	})
}
