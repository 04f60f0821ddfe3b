package cases

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/violations"
)

func TestUsersAndSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		e := newEnv(t, testConfig(st, "http://127.0.0.1:9/hook"), Deps{})
		ctx := context.Background()
		u, err := e.svc.AddUser(ctx, User{Name: "wang", Role: RoleUnit, Unit: "greenclean", Lang: "en"}, "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.AddUser(ctx, User{Name: "wang", Role: RoleCity}, "another long password"); !errors.Is(err, ErrConflict) {
			t.Errorf("second wang: got %v, want ErrConflict", err)
		}
		for _, bad := range []struct {
			u  User
			pw string
		}{
			{User{Name: "li", Role: RoleCity}, "short"},
			{User{Name: "li", Role: "mayor"}, "long enough password"},
			{User{Name: "li", Role: RoleUnit, Unit: "nobody"}, "long enough password"},
			{User{Name: "li", Role: RoleDistrict}, "long enough password"},
			{User{Name: "li <b>", Role: RoleCity}, "long enough password"},
			{User{Name: "li", Role: RoleCity, Lang: "fr"}, "long enough password"},
		} {
			if _, err := e.svc.AddUser(ctx, bad.u, bad.pw); !errors.Is(err, ErrBadRequest) {
				t.Errorf("AddUser(%+v, %q): got %v, want ErrBadRequest", bad.u, bad.pw, err)
			}
		}
		if _, err := e.svc.Login(ctx, "wang", "wrong password!"); !errors.Is(err, ErrBadLogin) {
			t.Errorf("wrong password: %v", err)
		}
		if _, err := e.svc.Login(ctx, "nobody", "correct horse battery"); !errors.Is(err, ErrBadLogin) {
			t.Errorf("unknown user: %v", err)
		}
		got, err := e.svc.Login(ctx, "wang", "correct horse battery")
		if err != nil || got.ID != u.ID || got.Actor() != (Actor{Name: "wang", Role: RoleUnit, Unit: "greenclean"}) {
			t.Fatalf("login: %+v %v", got, err)
		}

		tok, sess, err := e.svc.NewSession(ctx, got, time.Hour)
		if err != nil || len(sess.CSRF) < 40 || len(tok) < 40 {
			t.Fatalf("session: %q %+v %v", tok, sess, err)
		}
		var stored int
		if err := e.svc.st.queryRow(ctx, e.svc.st.db, `SELECT COUNT(*) FROM sessions WHERE id = ?`, tok).Scan(&stored); err != nil || stored != 0 {
			t.Errorf("the session token is stored in clear (%d, %v)", stored, err)
		}
		again, err := e.svc.SessionOf(ctx, tok)
		if err != nil || again.User.Name != "wang" || again.CSRF != sess.CSRF || again.User.Lang != "en" {
			t.Fatalf("session lookup: %+v %v", again, err)
		}
		other, _, _ := e.svc.NewSession(ctx, got, time.Hour)
		if err := e.svc.SetPassword(ctx, u.ID, "wrong old password", "a new long password", tok); !errors.Is(err, ErrBadLogin) {
			t.Errorf("password change with a wrong old password: %v", err)
		}
		if err := e.svc.SetPassword(ctx, u.ID, "correct horse battery", "a new long password", tok); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SessionOf(ctx, other); !errors.Is(err, ErrNoSession) {
			t.Errorf("other session after a password change: %v", err)
		}
		if _, err := e.svc.SessionOf(ctx, tok); err != nil {
			t.Errorf("the changing session should stay: %v", err)
		}
		if _, err := e.svc.Login(ctx, "wang", "a new long password"); err != nil {
			t.Errorf("login with the new password: %v", err)
		}
		if err := e.svc.SetUserLang(ctx, u.ID, "zh"); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(2 * time.Hour)
		if _, err := e.svc.SessionOf(ctx, tok); !errors.Is(err, ErrNoSession) {
			t.Errorf("expired session: %v", err)
		}
		tok2, _, _ := e.svc.NewSession(ctx, got, time.Hour)
		if err := e.svc.EndSession(ctx, tok2); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SessionOf(ctx, tok2); !errors.Is(err, ErrNoSession) {
			t.Errorf("ended session: %v", err)
		}
		users, err := e.svc.Users(ctx)
		if err != nil || len(users) != 1 || users[0].Lang != "zh" {
			t.Errorf("users: %+v %v", users, err)
		}
	})
}

func TestListOrdersAndCounts(t *testing.T) {
	eachStore(t, func(t *testing.T, st StoreConfig) {
		e := newEnv(t, testConfig(st, "http://127.0.0.1:9/hook"), Deps{})
		ctx := context.Background()
		for i, sev := range []string{"minor", "critical", "major", "minor", "critical"} {
			v := violations.Violation{Type: "bin_overflow", Severity: sev, Device: "bin-" + string(rune('a'+i)), Contractor: "greenclean", District: "east"}
			if i == 1 {
				v.Type, v.Contractor = "illegal_dumping", ""
			}
			if err := e.svc.Raise(ctx, v); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
		}
		ids := func(p Page) string {
			var b strings.Builder
			for _, c := range p.Cases {
				b.WriteString(string(rune('0' + c.ID)))
			}
			return b.String()
		}
		for _, tc := range []struct {
			f    Filter
			want string
		}{
			{Filter{}, "54321"},
			{Filter{Order: OrderOldest, Limit: 2}, "12"},
			{Filter{Order: OrderOldest, After: 2, Limit: 2}, "34"},
			{Filter{Before: 3}, "21"},
			{Filter{Severity: "critical"}, "52"},
			{Filter{Contractor: "greenclean", Order: OrderOldest}, "1345"},
		} {
			p, err := e.svc.List(ctx, System, tc.f)
			if err != nil || ids(p) != tc.want {
				t.Errorf("List(%+v) = %s, %v; want %s", tc.f, ids(p), err, tc.want)
			}
		}
		// By deadline: critical bins (accept 2h, close 24h per the bin rule) and the dumping case (8 working hours).
		all, _ := e.svc.List(ctx, System, Filter{Order: OrderDue})
		for i := 1; i < len(all.Cases); i++ {
			a, b := all.Cases[i-1], all.Cases[i]
			if b.CloseDue.Before(a.CloseDue) || (b.CloseDue.Equal(a.CloseDue) && b.ID < a.ID) {
				t.Errorf("due order broken at %d: %v/%d then %v/%d", i, a.CloseDue, a.ID, b.CloseDue, b.ID)
			}
		}
		first, _ := e.svc.List(ctx, System, Filter{Order: OrderDue, Limit: 2})
		last := first.Cases[1]
		rest, _ := e.svc.List(ctx, System, Filter{Order: OrderDue, After: last.ID, AfterDue: last.CloseDue})
		if got := ids(first) + ids(rest); got != ids(all) {
			t.Errorf("due pages %s, want %s", got, ids(all))
		}
		if _, err := e.svc.List(ctx, System, Filter{Order: "random"}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("unknown order: %v", err)
		}
		counts, err := e.svc.CountByState(ctx, System, Filter{State: []State{Closed}}, 0)
		if err != nil || counts[Dispatched] != 5 {
			t.Errorf("counts %v %v", counts, err)
		}
		unit := Actor{Name: "g", Role: RoleUnit, Unit: "greenclean"}
		counts, _ = e.svc.CountByState(ctx, unit, Filter{}, 0)
		if counts[Dispatched] != 4 {
			t.Errorf("greenclean counts %v", counts)
		}
		if capped, _ := e.svc.CountByState(ctx, unit, Filter{Severity: "minor"}, 1); capped[Dispatched] != 2 || len(capped) != 1 {
			t.Errorf("capped counts %v, want dispatched: 2 (more than 1)", capped)
		}
		if id, err := e.svc.LatestID(ctx, unit); err != nil || id != 5 {
			t.Errorf("latest for greenclean %d %v", id, err)
		}
		c, _ := e.svc.Get(ctx, System, 2)
		if got := ActionsFor(unit, c); got != nil {
			t.Errorf("greenclean may act on a case it does not see: %v", got)
		}
		c, _ = e.svc.Get(ctx, System, 1)
		if got := ActionsFor(unit, c); len(got) != 3 || got[0] != Accept || got[1] != SendBack || got[2] != Comment {
			t.Errorf("greenclean on a dispatched case: %v", got)
		}
	})
}
