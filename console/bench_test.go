package console

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/violations"
)

// fillStore writes n cases straight into a migrated SQLite case store, in
// one transaction: filing 100,000 through Raise would take minutes. The
// cases spread over types, severities, states, districts and units.
func fillStore(b testing.TB, path string, n int) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	st, err := tx.Prepare(`INSERT INTO cases (case_key, is_open, type, severity, state, device, kind, district, contractor, unit,
summary, hits, first_seen, last_seen, filed_at, dispatched_at, accept_due, close_due, overdue, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	districts := []string{"north", "central", "south"}
	units := []string{"enforcement-north", "enforcement-central", "greenclean", "city-office"}
	sevs := []string{violations.Minor, violations.Major, violations.Critical}
	start := time.Now().Add(-time.Duration(n) * time.Minute).UnixMilli()
	for i := 0; i < n; i++ {
		state := cases.States[i%len(cases.States)]
		open := 1
		if !state.Open() {
			open = 0
		}
		at := start + int64(i)*60_000
		typ := violations.Types[i%len(violations.Types)]
		dev := fmt.Sprintf("dev-%05d", i)
		if _, err := st.Exec(typ+"|device:"+dev, open, typ, sevs[i%3], string(state), dev, "truck", districts[i%3], "greenclean",
			units[i%4], dev+" did something that needs a look", at, at, at, at, at+2*3600_000, at+24*3600_000, i%7 == 0, at); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkQueueFirstPage100k renders the queue's first page (50 cases and
// the counts per state) with 100,000 cases in the store, for the city, a
// unit, and with filters and the deadline order.
func BenchmarkQueueFirstPage100k(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	path := filepath.Join(dir, "cases.db")
	ctx := context.Background()
	cfg := testCasesConfig(cases.StoreConfig{Driver: cases.SQLite, Path: path})
	svc, err := cases.Open(ctx, cfg, cases.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	svc.Close()
	fillStore(b, path, n)
	if svc, err = cases.Open(ctx, cfg, cases.Deps{}); err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	con, err := New(Options{Cases: svc, PhotoDir: filepath.Join(dir, "photos")})
	if err != nil {
		b.Fatal(err)
	}
	h := con.Handler()
	cookie := func(u cases.User, pw string) *http.Cookie {
		added, err := svc.AddUser(ctx, u, pw)
		if err != nil {
			b.Fatal(err)
		}
		tok, _, err := svc.NewSession(ctx, added, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		return &http.Cookie{Name: sessionCookie, Value: tok}
	}
	city := cookie(cases.User{Name: "city", Role: cases.RoleCity}, "city-password-123")
	unit := cookie(cases.User{Name: "crew", Role: cases.RoleUnit, Unit: "enforcement-north"}, "crew-password-123")
	for _, bc := range []struct {
		name, path string
		who        *http.Cookie
	}{
		{"city", "/cases", city},
		{"city-filtered", "/cases?state=dispatched&district=south&overdue=no", city},
		{"city-by-deadline", "/cases?sort=due", city},
		{"city-page-1000", "/cases?after=50000", city},
		{"unit", "/cases", unit},
		{"unit-by-deadline", "/cases?sort=due", unit},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var rows int
			for b.Loop() {
				req := httptest.NewRequest("GET", bc.path, nil)
				req.AddCookie(bc.who)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", bc.path, rec.Code)
				}
				rows = strings.Count(rec.Body.String(), "<tr data-id=")
			}
			if rows == 0 {
				b.Fatalf("%s rendered no case", bc.path)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
