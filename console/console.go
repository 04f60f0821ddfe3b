// Package console is the dispatcher console: the web pages, served by the
// gateway at /, where the city office, the district bureaus and the
// contractors' supervisors see, dispatch, handle and close cases, watch the
// fleet on a map and read the assessment.
//
// Pages are rendered on the server with html/template; the few scripts
// (htmx, Leaflet, uPlot and the console's own) are embedded with the
// templates, so that nothing is fetched from elsewhere at run time. People
// log in with a user of the case store; every action goes through the same
// cases.Service methods as the JSON API, so the same rules apply.
package console

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Options configure the console. Cases is required.
type Options struct {
	Cases *cases.Service
	// Layers are the city's GeoJSON files drawn as the base map, by name
	// ("districts", "sites", "sweeping_routes", "collection_routes").
	Layers map[string]string
	// TileURL, when set, is a tile server drawn under the layers
	// ("https://tiles.example/{z}/{x}/{y}.png"); by default there is none.
	TileURL string
	// PhotoDir holds the photos uploaded with handled cases.
	PhotoDir string
	// SecureCookies marks cookies Secure even on plain HTTP (behind a proxy
	// that terminates TLS); on TLS connections they always are.
	SecureCookies bool
	// SessionTTL is how long a login lasts (default 12 h).
	SessionTTL time.Duration
	// Poll is how often live pages look for news (default 1 s).
	Poll time.Duration
	// History, when set, reads the device's stored track and curves around
	// a case's span for the case page.
	History History
	// Calendar, when set, counts what is left of a deadline in working time.
	Calendar *fleet.Calendar
	// OIDC, when set, adds a login through the city's identity provider.
	OIDC *OIDC
	// Location is the city's time zone for the times shown (default UTC).
	Location *time.Location
	Logger   *slog.Logger
	// Clock is the time source (default time.Now).
	Clock func() time.Time
}

// Console serves the pages.
type Console struct {
	opt      Options
	svc      *cases.Service
	log      *slog.Logger
	tmpl     map[string]*template.Template
	layers   atomic.Pointer[[]byte] // the base map's layers, as one JSON object
	throttle *throttle
	oidc     *oidcLogin
	now      func() time.Time
	done     chan struct{}
	once     sync.Once
}

// Close ends the live event streams, so that a server shutting down does
// not wait for them; the pages keep working.
func (c *Console) Close() {
	c.once.Do(func() { close(c.done) })
}

// SetLayers reads the base map's GeoJSON files again (a configuration
// reload may have changed the places) and serves them from the next page
// on. On error the layers in force stay.
func (c *Console) SetLayers(files map[string]string) error {
	b, err := readLayers(files)
	if err != nil {
		return err
	}
	c.layers.Store(&b)
	return nil
}

// maxPhotoBytes bounds an uploaded photo.
const maxPhotoBytes = 8 << 20

// New checks the options, reads the map layers and parses the templates.
func New(opt Options) (*Console, error) {
	if opt.Cases == nil {
		return nil, fmt.Errorf("console: no case service")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = 12 * time.Hour
	}
	if opt.Poll <= 0 {
		opt.Poll = time.Second
	}
	if opt.PhotoDir == "" {
		return nil, fmt.Errorf("console: no photo folder")
	}
	if err := os.MkdirAll(opt.PhotoDir, 0o750); err != nil {
		return nil, fmt.Errorf("console: photo folder: %w", err)
	}
	c := &Console{opt: opt, svc: opt.Cases, log: opt.Logger, now: opt.Clock, throttle: newThrottle(opt.Clock), done: make(chan struct{})}
	if err := c.SetLayers(opt.Layers); err != nil {
		return nil, err
	}
	var err error
	if opt.OIDC != nil {
		if c.oidc, err = newOIDCLogin(*opt.OIDC); err != nil {
			return nil, err
		}
	}
	if c.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	return c, nil
}

func parseTemplates() (map[string]*template.Template, error) {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	pages, err := fs.Glob(templateFiles, "templates/page_*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		t, err := template.Must(base.Clone()).ParseFS(templateFiles, p)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", p, err)
		}
		name := filepath.Base(p)
		out[name[len("page_"):len(name)-len(".html")]] = t
	}
	return out, nil
}

// Handler serves the console. Mount it at / on the gateway's mux; the
// more specific API, metrics and health paths stay with their handlers.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", cacheFor(fileServer))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	if c.oidc != nil {
		mux.HandleFunc("GET /login/oidc", c.oidcStart)
		mux.HandleFunc("GET /login/oidc/callback", c.oidcCallback)
	}
	mux.Handle("POST /logout", c.auth(c.logout))
	mux.Handle("GET /{$}", c.auth(c.queuePage))
	mux.Handle("GET /cases", c.auth(c.queuePage))
	mux.Handle("GET /events", c.auth(c.events))
	mux.Handle("GET /cases/{id}", c.auth(c.casePage))
	mux.Handle("POST /cases/{id}/act", c.auth(c.act))
	mux.Handle("GET /cases/{id}/photos/{name}", c.auth(c.photo))
	mux.Handle("GET /map/layers.json", c.auth(c.layersJSON))
	mux.Handle("GET /fleet", c.auth(c.fleetPage))
	mux.Handle("GET /fleet.json", c.auth(c.fleetJSON))
	mux.Handle("GET /assessment", c.auth(c.assessPage))
	mux.Handle("GET /assessment.csv", c.auth(c.assessCSV))
	mux.Handle("GET /account", c.auth(c.accountPage))
	mux.Handle("POST /account/password", c.auth(c.changePassword))
	mux.Handle("POST /account/lang", c.auth(c.changeLang))
	mux.Handle("GET /admin/users", c.auth(c.usersPage))
	mux.Handle("POST /admin/users", c.auth(c.addUser))
	return securityHeaders(c.opt.TileURL, mux)
}

// cacheFor serves the embedded assets with a cache lifetime, and no
// folder listings.
func cacheFor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// securityHeaders forbids framing, inline scripts and foreign sources.
func securityHeaders(tileURL string, h http.Handler) http.Handler {
	img := "'self' data: blob:"
	if o := origin(tileURL); o != "" {
		img += " " + o
	}
	csp := "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src " + img +
		"; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}
