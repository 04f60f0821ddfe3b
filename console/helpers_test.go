package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/internal/pgtest"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/violations"
)

// Users of the test city, one per role, and their passwords.
var testUsers = []struct {
	u  cases.User
	pw string
}{
	{cases.User{Name: "dispatcher", Role: cases.RoleCity, Lang: "en", Admin: true}, "dispatcher-password"},
	{cases.User{Name: "north", Role: cases.RoleDistrict, District: "north", Lang: "en"}, "north-district-password"},
	{cases.User{Name: "crew", Role: cases.RoleUnit, Unit: "enforcement-north", Lang: "en"}, "north-crew-password"},
	{cases.User{Name: "green", Role: cases.RoleUnit, Unit: "greenclean", Lang: "zh"}, "greenclean-password"},
}

func passwordOf(name string) string {
	for _, tu := range testUsers {
		if tu.u.Name == name {
			return tu.pw
		}
	}
	return ""
}

func testCasesConfig(st cases.StoreConfig) cases.Config {
	return cases.Config{
		Store: st,
		Units: []cases.UnitConfig{
			{ID: "enforcement-north", Name: "North enforcement bureau"},
			{ID: "enforcement-central", Name: "Central enforcement bureau"},
			{ID: "greenclean", Name: "Greenclean", Contractor: "greenclean"},
			{ID: "city-office", Name: "City office"},
		},
		Dispatch: cases.DispatchConfig{DefaultUnit: "city-office", EscalationUnit: "city-office",
			Rules: []cases.DispatchRule{{Type: "bin_overflow", Unit: "greenclean"}}},
		Deadlines: []cases.DeadlineConfig{{Type: "*", Accept: 2 * time.Hour, Close: 24 * time.Hour}},
	}
}

type env struct {
	svc *cases.Service
	con *Console
	srv *httptest.Server
	dir string
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// eachStore runs fn with the case store on SQLite and on a real PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, st cases.StoreConfig)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, cases.StoreConfig{Driver: cases.SQLite, Path: filepath.Join(t.TempDir(), "cases.db")})
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, cases.StoreConfig{Driver: cases.Postgres, DSN: pgtest.DB(t)})
	})
}

// newEnv starts a case service on SQLite, the console on a loopback
// server, and adds the test users.
func newEnv(t testing.TB, opt Options) *env {
	t.Helper()
	return newEnvOn(t, opt, cases.StoreConfig{Driver: cases.SQLite, Path: filepath.Join(t.TempDir(), "cases.db")})
}

// newEnvOn is newEnv on the given case store.
func newEnvOn(t testing.TB, opt Options, st cases.StoreConfig) *env {
	t.Helper()
	dir := t.TempDir()
	cst := time.FixedZone("CST", 8*3600)
	svc, err := cases.Open(context.Background(), testCasesConfig(st), cases.Deps{Location: cst, Devices: testDevices{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	for _, tu := range testUsers {
		if _, err := svc.AddUser(context.Background(), tu.u, tu.pw); err != nil {
			t.Fatal(err)
		}
	}
	root := testenv.RepoRoot()
	opt.Cases, opt.PhotoDir, opt.Location = svc, filepath.Join(dir, "photos"), cst
	if opt.Layers == nil {
		opt.Layers = map[string]string{}
		for _, n := range []string{"districts", "sites", "sweeping_routes", "collection_routes"} {
			opt.Layers[n] = filepath.Join(root, "examples", "demo", n+".geojson")
		}
	}
	if opt.Poll == 0 {
		opt.Poll = 200 * time.Millisecond
	}
	if os.Getenv("CONSOLE_TEST_LOG") != "" {
		opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	con, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(func() {
		con.Close()
		srv.Close()
	})
	return &env{svc: svc, con: con, srv: srv, dir: dir}
}

// dump raises an illegal dumping in the north district with its evidence:
// the truck's load falling during a stop, and the stop's position.
func (e *env) dump(t testing.TB, device string, at time.Time) {
	t.Helper()
	var ev []violations.Evidence
	for i := 0; i < 8; i++ {
		load := 5200.0
		if i >= 3 {
			load = 5200 - float64(i-2)*700
		}
		ev = append(ev, violations.Evidence{Time: at.Add(time.Duration(i) * 20 * time.Second), Fields: map[string]float64{
			"load_kg": load, "lat": 39.975 + float64(i)*0.0004, "lon": 116.42 + float64(i)*0.0006}})
	}
	ev = append(ev, violations.Evidence{Time: at.Add(time.Minute), Fields: map[string]float64{"lat": 39.9765, "lon": 116.4225, "drop_kg": 3500},
		Note: "stop position (mean of good fixes) and drop"})
	err := e.svc.Raise(context.Background(), violations.Violation{Key: device + "@" + at.Format(time.RFC3339Nano),
		Type: violations.IllegalDumping, Severity: violations.Major, Device: device, Kind: "truck", District: "north",
		Start: at, End: at.Add(3 * time.Minute), Lat: 39.9765, Lon: 116.4225, HasPos: true,
		Summary: device + " dropped 3500 kg of waste while stopped, outside every site that accepts it", Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
}

// testDevices is a small fleet in the demo city's north and central
// districts, as the gateway's directory would list it.
type testDevices struct{}

var testFleet = []cases.DeviceInfo{
	{ID: "truck-7", Kind: "truck", District: "north", Contractor: "greenclean", Lat: 39.9765, Lon: 116.4225, HasPos: true, Online: true},
	{ID: "truck-8", Kind: "truck", District: "central", Contractor: "greenclean", Lat: 39.925, Lon: 116.36, HasPos: true, Online: false},
	{ID: "bin-7", Kind: "bin", District: "central", Contractor: "greenclean", Lat: 39.93, Lon: 116.40, HasPos: true, Online: true},
	{ID: "bin-8", Kind: "bin", District: "north", Contractor: "greenclean", Lat: 39.96, Lon: 116.35, HasPos: true, Online: true},
	{ID: "toilet-1", Kind: "toilet", District: "north", Lat: 39.985, Lon: 116.45, HasPos: true, Online: true},
}

func (testDevices) Devices() []cases.DeviceInfo { return append([]cases.DeviceInfo(nil), testFleet...) }

func (testDevices) LastReading(id string) (cases.Reading, bool) {
	switch id {
	case "bin-8":
		return cases.Reading{Time: time.Now().Add(-time.Minute), Fields: map[string]float64{"fill_pct": 96}}, true
	case "truck-7":
		return cases.Reading{Time: time.Now().Add(-time.Minute), Fields: map[string]float64{"load_kg": 1700, "speed_kmh": 0}}, true
	}
	return cases.Reading{}, false
}

// client is a browser without a browser: a cookie jar and forms.
type client struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
}

func (e *env) client(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: e.srv.URL, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	resp, err := c.c.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

func (c *client) post(path string, form url.Values) (int, string) {
	c.t.Helper()
	resp, err := c.c.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// login logs in through the form and fails the test if it does not work.
func (c *client) login(name string) {
	c.t.Helper()
	if code, body := c.tryLogin(name, passwordOf(name)); code != http.StatusOK || !strings.Contains(body, `id="queue-body"`) {
		c.t.Fatalf("login %s: %d %s", name, code, body)
	}
}

func (c *client) tryLogin(name, pw string) (int, string) {
	c.t.Helper()
	c.get("/login")
	return c.post("/login", url.Values{"csrf": {c.csrf}, "name": {name}, "password": {pw}, "next": {"/cases"}})
}
