package cases

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/pgtest"
	"github.com/sanigate/sanigate/violations"
)

// seed inserts n cases spread over 90 days, types, districts, units and
// states, in multi-row inserts.
func seed(tb testing.TB, s *Service, n int) {
	tb.Helper()
	ctx := context.Background()
	districts := []string{"east", "west", "north", "south", "centre"}
	units := []string{"enforcement-east", "greenclean", "city-office"}
	states := []State{Dispatched, Accepted, Handled, Closed, Closed, Closed, Transferred, Deferred}
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, cst)
	const batch = 500
	for i := 0; i < n; i += batch {
		var sb strings.Builder
		var args []any
		sb.WriteString(`INSERT INTO cases (case_key, is_open, type, severity, state, device, district, unit, summary, hits,
first_seen, last_seen, filed_at, dispatched_at, close_due, closed_at, overdue, updated_at) VALUES `)
		for j := i; j < i+batch && j < n; j++ {
			if j > i {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)")
			st := states[j%len(states)]
			open := st != Closed
			filed := start.Add(time.Duration(j) * 77 * time.Second)
			closed := int64(0)
			if !open {
				closed = ms(filed.Add(5 * time.Hour))
			}
			typ := violations.Types[j%len(violations.Types)]
			key := fmt.Sprintf("%s|device:dev-%d", typ, j)
			args = append(args, key, b2i(open), typ, violations.Minor, string(st), fmt.Sprintf("dev-%d", j),
				districts[j%len(districts)], units[j%len(units)], "seeded", ms(filed), ms(filed), ms(filed), ms(filed),
				ms(filed.Add(24*time.Hour)), closed, b2i(j%7 == 0), ms(filed))
		}
		if _, err := s.st.exec(ctx, s.st.db, sb.String(), args...); err != nil {
			tb.Fatal(err)
		}
	}
	if s.st.driver == Postgres {
		_, _ = s.st.db.Exec("ANALYZE cases")
	} else {
		_, _ = s.st.db.Exec("ANALYZE")
	}
}

func benchStores(b *testing.B, fn func(b *testing.B, st StoreConfig)) {
	b.Run("sqlite", func(b *testing.B) {
		fn(b, StoreConfig{Driver: SQLite, Path: filepath.Join(b.TempDir(), "cases.db")})
	})
	b.Run("postgres", func(b *testing.B) {
		fn(b, StoreConfig{Driver: Postgres, DSN: pgtest.DB(b)})
	})
}

// BenchmarkAPIList100k measures GET /api/v1/cases over 100,000 cases,
// through the real handler (authentication, query, JSON), for a page of 50.
func BenchmarkAPIList100k(b *testing.B) {
	benchStores(b, func(b *testing.B, st StoreConfig) {
		e := newEnv(b, testConfig(st, "http://127.0.0.1:1/x"), Deps{})
		seed(b, e.svc, 100_000)
		h := e.svc.Handler()
		for _, q := range []string{
			"",
			"?state=dispatched&district=east",
			"?unit=greenclean&overdue=true",
			"?type=bin_overflow&from=2026-10-01T00:00:00%2B08:00&to=2026-10-15T00:00:00%2B08:00",
			"?cursor=50000",
		} {
			name := q
			if name == "" {
				name = "?first-page"
			}
			b.Run(name[1:], func(b *testing.B) {
				req := httptest.NewRequest("GET", "/api/v1/cases"+q, nil)
				req.Header.Set("Authorization", "Bearer "+tokCity)
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		}
		b.Run("unit-token", func(b *testing.B) {
			req := httptest.NewRequest("GET", "/api/v1/cases?state=dispatched", nil)
			req.Header.Set("Authorization", "Bearer "+tokGreenclean)
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
			}
		})
	})
}

// BenchmarkRaiseToWebhook measures the time from Raise (a new case) to its
// signed webhook arriving at a real receiver, with the service's own
// workers running; it reports p50 and p99.
func BenchmarkRaiseToWebhook(b *testing.B) {
	benchStores(b, func(b *testing.B, st StoreConfig) {
		var mu sync.Mutex
		arrived := map[int64]time.Time{}
		done := make(chan int64, 1024)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var n Notification
			_ = jsonDecode(r, &n)
			mu.Lock()
			arrived[n.Case.ID] = time.Now()
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			done <- n.Case.ID
		}))
		defer srv.Close()
		cfg := testConfig(st, srv.URL)
		cfg.Outbox.Poll = 50 * time.Millisecond
		e := newEnv(b, cfg, Deps{Clock: time.Now})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go e.svc.Run(ctx)
		var lat []time.Duration
		i := 0
		for b.Loop() {
			i++
			v := dumpingAtFarm(time.Now())
			v.Device = fmt.Sprintf("truck-%d", i)
			v.Key = v.Device
			t0 := time.Now()
			if err := e.svc.Raise(ctx, v); err != nil {
				b.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				b.Fatal("no webhook")
			}
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	})
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
