package cases

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/pgtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachStore runs fn against SQLite and against a real PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, st StoreConfig)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, StoreConfig{Driver: SQLite, Path: filepath.Join(t.TempDir(), "cases.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, StoreConfig{Driver: Postgres, DSN: pgtest.DB(t)})
	})
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var cst = time.FixedZone("CST", 8*3600)

// Tokens of the test configuration.
const (
	tokCity       = "city-token-0123456789abcdef"
	tokEast       = "district-east-token-0123456789"
	tokWest       = "district-west-token-0123456789"
	tokEnforce    = "unit-enforcement-east-token-0123"
	tokGreenclean = "unit-greenclean-token-0123456789"
)

const webhookSecret = "east-webhook-secret-do-not-log"

// testConfig is a city with an enforcement bureau in the east district, a
// contractor for bins with a crew terminal, and the city office as default
// and escalation unit.
func testConfig(st StoreConfig, webhookURL string) Config {
	return Config{
		Store: st,
		Units: []UnitConfig{
			{ID: "enforcement-east", Name: "East enforcement bureau", WebhookURL: webhookURL, SecretEnv: "TEST_EAST_SECRET", Escalation: "city-office"},
			{ID: "greenclean", Name: "GreenClean Ltd", Contractor: "greenclean"},
			{ID: "city-office", Name: "City management office"},
		},
		Dispatch: DispatchConfig{
			DefaultUnit:    "city-office",
			EscalationUnit: "city-office",
			Rules: []DispatchRule{
				{Type: "illegal_dumping", District: "east", Unit: "enforcement-east"},
				{Type: "bin_overflow", Unit: "greenclean"},
			},
		},
		Deadlines: []DeadlineConfig{
			{Type: "illegal_dumping", Severity: "critical", Accept: time.Hour, Close: 8 * time.Hour, WorkingTime: true},
			{Type: "bin_overflow", Accept: 2 * time.Hour, Close: 24 * time.Hour},
		},
		Tokens: []TokenConfig{
			{Name: "city-office-desk", Role: RoleCity, TokenHash: HashToken(tokCity), Admin: true},
			{Name: "east-district-desk", Role: RoleDistrict, District: "east", TokenHash: HashToken(tokEast)},
			{Name: "west-district-desk", Role: RoleDistrict, District: "west", TokenHash: HashToken(tokWest)},
			{Name: "east-bureau-crew", Role: RoleUnit, Unit: "enforcement-east", TokenHash: HashToken(tokEnforce)},
			{Name: "greenclean-dispatcher", Role: RoleUnit, Unit: "greenclean", TokenHash: HashToken(tokGreenclean)},
		},
		Outbox: OutboxConfig{RetryMin: 2 * time.Second, RetryMax: 5 * time.Minute},
	}
}

// testCalendar: 09:00-18:00 on weekdays, the National Day week off, and
// Saturday 10 October 2026 a make-up working day.
func testCalendar(t testing.TB) *fleet.Calendar {
	t.Helper()
	cal, err := fleet.CalendarConfig{
		WorkingHours: "09:00-18:00",
		Holidays:     []string{"2026-10-01..2026-10-07"},
		Workdays:     []string{"2026-10-10"},
	}.Build(cst)
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

// linesRecorder is a PointWriter keeping every line.
type linesRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *linesRecorder) WriteLines(_ context.Context, b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			r.lines = append(r.lines, l)
		}
	}
	return nil
}

func (r *linesRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

type env struct {
	svc    *Service
	clock  *fakeClock
	points *linesRecorder
	api    *httptest.Server
}

func newEnv(t testing.TB, cfg Config, deps Deps) *env {
	t.Helper()
	e := &env{clock: &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, cst)}, points: &linesRecorder{}}
	if deps.Clock == nil {
		deps.Clock = e.clock.Now
	}
	if deps.Calendar == nil {
		deps.Calendar = testCalendar(t)
	}
	if deps.Points == nil {
		deps.Points = e.points
	}
	if deps.Getenv == nil {
		deps.Getenv = func(k string) string {
			if k == "TEST_EAST_SECRET" {
				return webhookSecret
			}
			return ""
		}
	}
	svc, err := Open(context.Background(), cfg, deps)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	e.svc = svc
	e.api = httptest.NewServer(svc.Handler())
	t.Cleanup(e.api.Close)
	return e
}

// call makes an API request and decodes the JSON answer into out (if not nil).
func (e *env) call(t testing.TB, token, method, path string, body any, out any) int {
	t.Helper()
	return testenv.CallAPI(t, e.api.URL, token, method, path, body, out)
}

// receiver is a webhook receiver that checks signatures, and can be down.
type receiver struct {
	t      testing.TB
	clock  func() time.Time
	mu     sync.Mutex
	down   bool
	got    []Notification
	seen   map[string]bool
	hits   int
	errors []string
	srv    *httptest.Server
}

func newReceiver(t testing.TB, clock func() time.Time) *receiver {
	r := &receiver{t: t, clock: clock, seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	if r.down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if err := VerifySignature([]byte(webhookSecret), req.Header, body, r.clock(), 5*time.Minute); err != nil {
		r.errors = append(r.errors, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	d := req.Header.Get(HeaderDelivery)
	if r.seen[d] {
		w.WriteHeader(http.StatusOK) // a duplicate delivery: acknowledged, not processed twice
		return
	}
	r.seen[d] = true
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		r.errors = append(r.errors, err.Error())
	}
	r.got = append(r.got, n)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setDown(b bool) {
	r.mu.Lock()
	r.down = b
	r.mu.Unlock()
}

func (r *receiver) received() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.got...)
}

func (r *receiver) sigErrors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}
