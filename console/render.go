package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
)

// page is what every template gets: the language, the user, the CSRF token.
type page struct {
	Lang  string
	CSRF  string
	Title string
	Nav   string
	User  cases.User
	loc   *time.Location
	cal   *fleet.Calendar
	now   time.Time
}

// WorkLeft says how much working time remains until t ("" without a
// calendar, or once t has passed).
func (p *page) WorkLeft(t time.Time) string {
	if p.cal == nil || t.IsZero() || !t.After(p.now) {
		return ""
	}
	return fmt.Sprintf(p.T("due.work"), fmtDuration(p.cal.WorkingTimeBetween(p.now, t)))
}

// T translates a message key into the page's language.
func (p *page) T(key string) string { return translate(p.Lang, key) }

// Time formats a time in the city's zone ("" for the zero time).
func (p *page) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	loc := p.loc
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04")
}

// Left says how long remains until t, or how late it is.
func (p *page) Left(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(p.now)
	late := d < 0
	if late {
		d = -d
	}
	s := fmtDuration(d)
	if late {
		return fmt.Sprintf(p.T("due.late"), s)
	}
	return fmt.Sprintf(p.T("due.left"), s)
}

// Late reports whether t has passed.
func (p *page) Late(t time.Time) bool { return !t.IsZero() && t.Before(p.now) }

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	h := int(d.Hours())
	m := int(d.Minutes()) % 60
	if h >= 48 {
		return fmt.Sprintf("%dd %dh", h/24, h%24)
	}
	return fmt.Sprintf("%dh %02dm", h, m)
}

// rowData is one row of the queue.
type rowData struct {
	P *page
	C cases.Case
}

// Row pairs a case with the page for the row template.
func (p *page) Row(c cases.Case) rowData { return rowData{P: p, C: c} }

// base fills the common part of a page for a logged-in user.
func (c *Console) base(q *request, title, nav string) page {
	return page{Lang: q.lang, CSRF: q.sess.CSRF, Title: title, Nav: nav, User: q.sess.User, loc: c.opt.Location,
		cal: c.opt.Calendar, now: c.now()}
}

var funcs = template.FuncMap{
	"state":  func(s cases.State) string { return string(s) },
	"join":   strings.Join,
	"pct":    func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"width":  func(f float64) string { return fmt.Sprintf("%.0f", clamp(f*100, 0, 100)) },
	"query":  func(v url.Values) template.URL { return template.URL(v.Encode()) },
	"lower":  strings.ToLower,
	"action": func(a cases.Action) string { return string(a) },
}

func clamp(f, lo, hi float64) float64 {
	if f < lo {
		return lo
	}
	if f > hi {
		return hi
	}
	return f
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	t, ok := c.tmpl[name]
	if !ok {
		c.log.Error("console template missing", "template", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		c.log.Error("console template failed", "template", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// origin is the scheme and host of a tile URL, for the page's policy; a
// "{s}" subdomain placeholder becomes a wildcard.
func origin(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	host = strings.Replace(host, "{s}", "*", 1)
	if host == "" || strings.ContainsAny(host, " ;'\"{}") {
		return ""
	}
	return scheme + "://" + host
}

// readLayers reads the GeoJSON base layers into one JSON object.
func readLayers(files map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("{")
	first := true
	for _, name := range []string{"districts", "sites", "sweeping_routes", "collection_routes"} {
		path := files[name]
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("console: map layer %s: %w", name, err)
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:", name)
		b.Write(bytes.TrimSpace(data))
	}
	b.WriteString("}")
	return b.Bytes(), nil
}

func (c *Console) layersJSON(w http.ResponseWriter, r *http.Request, q *request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(*c.layers.Load())
}

// fail answers an error of the case service in the user's language.
func (c *Console) fail(w http.ResponseWriter, q *request, err error) {
	status, key := http.StatusInternalServerError, "err.internal"
	switch {
	case errorsIs(err, cases.ErrNotFound):
		status, key = http.StatusNotFound, "err.notfound"
	case errorsIs(err, cases.ErrForbidden):
		status, key = http.StatusForbidden, "err.forbidden"
	case errorsIs(err, cases.ErrInvalidTransition), errorsIs(err, cases.ErrConflict):
		status, key = http.StatusConflict, "err.conflict"
	case errorsIs(err, cases.ErrBadRequest):
		status, key = http.StatusBadRequest, "err.bad"
	default:
		c.log.Error("console request failed", "err", err)
	}
	msg := translate(q.lang, key)
	if status != http.StatusInternalServerError {
		msg += ": " + err.Error()
	}
	http.Error(w, msg, status)
}
