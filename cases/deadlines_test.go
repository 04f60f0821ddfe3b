package cases

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/violations"
)

func TestWorkingTimeDeadlines(t *testing.T) {
	cfg := testConfig(StoreConfig{Driver: SQLite, Path: t.TempDir() + "/c.db"}, "http://127.0.0.1:1/x")
	e := newEnv(t, cfg, Deps{})
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, cst) }
	tests := []struct {
		name          string
		typ, severity string
		filed         time.Time
		accept, close time.Time
	}{
		{"friday evening waits for monday", violations.IllegalDumping, violations.Critical, at(2026, 11, 27, 19, 30),
			at(2026, 11, 30, 10, 0), at(2026, 11, 30, 17, 0)},
		{"friday afternoon runs into monday", violations.IllegalDumping, violations.Critical, at(2026, 11, 27, 17, 30),
			at(2026, 11, 30, 9, 30), at(2026, 11, 30, 16, 30)},
		{"national day week is skipped", violations.IllegalDumping, violations.Critical, at(2026, 9, 30, 17, 30),
			at(2026, 10, 8, 9, 30), at(2026, 10, 8, 16, 30)},
		{"make-up saturday is worked", violations.IllegalDumping, violations.Critical, at(2026, 10, 9, 17, 0),
			at(2026, 10, 9, 18, 0), at(2026, 10, 10, 16, 0)},
		{"wall time ignores the calendar", violations.BinOverflow, violations.Minor, at(2026, 11, 27, 19, 30),
			at(2026, 11, 27, 21, 30), at(2026, 11, 28, 19, 30)},
		{"no rule: the defaults in wall time", violations.ToiletOdour, violations.Major, at(2026, 11, 27, 19, 30),
			at(2026, 11, 27, 21, 30), at(2026, 11, 28, 19, 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accept, closeDue := e.svc.Due(tt.typ, tt.severity, tt.filed)
			if !accept.Equal(tt.accept) || !closeDue.Equal(tt.close) {
				t.Errorf("got accept %v close %v, want %v and %v", accept.In(cst), closeDue.In(cst), tt.accept, tt.close)
			}
		})
	}
}

func TestOverdueEscalatesAndTransferRestarts(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		clock := &fakeClock{t: time.Date(2026, 11, 27, 17, 30, 0, 0, cst)} // Friday 17:30
		rcv := newReceiver(t, clock.Now)
		cfg := testConfig(st, rcv.srv.URL)
		cfg.Units[2].WebhookURL, cfg.Units[2].Secret = rcv.srv.URL+"/escalation", webhookSecret
		e := newEnv(t, cfg, Deps{Clock: clock.Now})
		if err := e.svc.Raise(ctx, dumpingAtFarm(clock.Now())); err != nil {
			t.Fatal(err)
		}
		page, _ := e.svc.List(ctx, System, Filter{})
		id := page.Cases[0].ID
		if n, err := e.svc.CheckDeadlines(ctx); err != nil || n != 0 {
			t.Fatalf("check before the deadline: %d missed, err %v", n, err)
		}
		// The weekend passes; on Monday 09:31 the accept deadline (09:30) is missed.
		clock.Set(time.Date(2026, 11, 30, 9, 31, 0, 0, cst))
		if n, err := e.svc.CheckDeadlines(ctx); err != nil || n != 1 {
			t.Fatalf("check: %d missed, err %v; want 1", n, err)
		}
		if n, _ := e.svc.CheckDeadlines(ctx); n != 0 {
			t.Fatalf("a second check found %d, want 0 (once per deadline)", n)
		}
		c, _ := e.svc.Get(ctx, System, id)
		if !c.Overdue || !c.AcceptMissed || c.CloseMissed {
			t.Fatalf("got overdue %v accept_missed %v close_missed %v", c.Overdue, c.AcceptMissed, c.CloseMissed)
		}
		if h := c.History[len(c.History)-1]; h.Action != Overdue || h.Actor != "system" {
			t.Fatalf("last history %+v, want overdue by system", h)
		}
		if _, err := e.svc.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		var escalated bool
		for _, n := range rcv.received() {
			if n.Event == "overdue" && n.Unit == "city-office" && n.Responsible == "enforcement-east" && n.Case.ID == id {
				escalated = true
			}
		}
		if !escalated {
			t.Fatalf("the escalation unit was not told: %+v", rcv.received())
		}

		// Transfer (移送) to the city office restarts the accept deadline and keeps the history.
		before := len(c.History)
		clock.Advance(30 * time.Minute)
		c2, err := e.svc.Act(ctx, Actor{Name: "east-district-desk", Role: RoleDistrict, District: "east"}, id,
			ActionRequest{Action: Transfer, Unit: "city-office", Note: "dumping on a farm is a city matter"})
		if err != nil {
			t.Fatal(err)
		}
		if c2.State != Transferred || c2.Unit != "city-office" || c2.AcceptMissed ||
			!c2.AcceptDue.Equal(time.Date(2026, 11, 30, 11, 1, 0, 0, cst)) {
			t.Fatalf("after transfer: state %s unit %s accept_missed %v accept_due %v", c2.State, c2.Unit, c2.AcceptMissed, c2.AcceptDue.In(cst))
		}
		if len(c2.History) != before+1 || c2.History[before].Action != Transfer || c2.History[before].Unit != "city-office" {
			t.Fatalf("history after transfer: %+v", c2.History)
		}
		if !c2.Overdue {
			t.Error("a transfer must not wipe the overdue mark")
		}
		// The city office accepts in time; the close deadline (Monday 16:30) passes.
		clock.Advance(20 * time.Minute)
		if _, err := e.svc.Act(ctx, System, id, ActionRequest{Action: Accept}); err != nil {
			t.Fatal(err)
		}
		clock.Set(time.Date(2026, 11, 30, 16, 31, 0, 0, cst))
		if n, _ := e.svc.CheckDeadlines(ctx); n != 1 {
			t.Fatalf("close deadline: %d missed, want 1", n)
		}
		k, _ := e.svc.KPIs(ctx, System, KPIQuery{From: time.Date(2026, 11, 30, 0, 0, 0, 0, cst), To: time.Date(2026, 12, 1, 0, 0, 0, 0, cst), By: "all"})
		if len(k) != 1 || k[0].Due != 1 || k[0].Overdue != 1 || k[0].Closed != 0 || k[0].ClosureRate != 0 {
			t.Fatalf("kpis: %+v", k)
		}
		var overduePoints int
		for _, l := range e.points.all() {
			if strings.HasPrefix(l, "case,") && strings.Contains(l, "action=overdue") && strings.Contains(l, "overdue=true") {
				overduePoints++
			}
		}
		if overduePoints != 2 {
			t.Errorf("got %d overdue case points, want 2", overduePoints)
		}
	})
}

func TestInvalidTransitionNamesStateAndAction(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		ctx := context.Background()
		e := newEnv(t, testConfig(st, "http://127.0.0.1:1/x"), Deps{})
		if err := e.svc.Raise(ctx, binOverflow("k1", e.clock.Now(), false)); err != nil {
			t.Fatal(err)
		}
		page, _ := e.svc.List(ctx, System, Filter{})
		id := page.Cases[0].ID
		_, err := e.svc.Act(ctx, System, id, ActionRequest{Action: Handle})
		var te *TransitionError
		if !errors.As(err, &te) || te.State != Dispatched || te.Action != Handle {
			t.Fatalf("handle before accept: got %v, want a TransitionError for handle in dispatched", err)
		}
		var body apiError
		code := e.call(t, tokGreenclean, "POST", "/api/v1/cases/"+strconv.FormatInt(id, 10)+"/handle", nil, &body)
		if code != 409 || body.Code != "invalid_transition" || body.State != Dispatched || body.Action != Handle || len(body.Allowed) == 0 {
			t.Fatalf("API: got %d %+v, want 409 naming state and action", code, body)
		}
		if code := e.call(t, tokCity, "POST", "/api/v1/cases/"+strconv.FormatInt(id, 10)+"/dance", nil, &body); code != 400 {
			t.Fatalf("unknown action: got %d, want 400", code)
		}
		// Verify fail sends it back and counts as rework.
		for _, a := range []Action{Accept, Handle} {
			if _, err := e.svc.Act(ctx, System, id, ActionRequest{Action: a}); err != nil {
				t.Fatal(err)
			}
		}
		c, err := e.svc.Act(ctx, System, id, ActionRequest{Action: Verify, Pass: ptr(false), Note: "bin still full"})
		if err != nil {
			t.Fatal(err)
		}
		if c.State != Dispatched || c.Reworks != 1 {
			t.Fatalf("after a failed verification: state %s reworks %d", c.State, c.Reworks)
		}
		b, _ := json.Marshal(c.History[len(c.History)-1])
		if c.History[len(c.History)-1].Note != "fail: bin still full" {
			t.Errorf("history of the failed verification: %s", b)
		}
		// Defer, then the unit accepts and handles, the verifier passes it.
		if _, err := e.svc.Act(ctx, System, id, ActionRequest{Action: Defer, Until: e.clock.Now().Add(72 * time.Hour), Note: "truck in repair"}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []Action{Accept, Handle} {
			if _, err := e.svc.Act(ctx, System, id, ActionRequest{Action: a}); err != nil {
				t.Fatal(err)
			}
		}
		c, err = e.svc.Act(ctx, System, id, ActionRequest{Action: Verify, Pass: ptr(true)})
		if err != nil || c.State != Closed || !c.Extended {
			t.Fatalf("close after rework: %v %+v", err, c)
		}
		// Closed is final for everything but comment and reopen.
		if _, err := e.svc.Act(ctx, System, id, ActionRequest{Action: Accept}); !errors.Is(err, ErrInvalidTransition) {
			t.Fatalf("accept on a closed case: %v", err)
		}
		if _, err := e.svc.Act(ctx, System, id, ActionRequest{Action: Comment, Note: "for the record"}); err != nil {
			t.Fatal(err)
		}
		k, _ := e.svc.KPIs(ctx, System, KPIQuery{By: "all"})
		if len(k) != 1 || k[0].Reworked != 1 || k[0].Extended != 1 || k[0].ReworkRate != 1 || k[0].ExtensionRate != 1 {
			t.Fatalf("kpis: %+v", k)
		}
	})
}
