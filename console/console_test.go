package console

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/violations"
)

func TestLoginCookiesAndLogout(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.client(t)
	code, body := c.get("/cases")
	if code != http.StatusOK || !strings.Contains(body, `action="/login"`) {
		t.Fatalf("anonymous /cases should end on the login form: %d", code)
	}
	if code, body := c.tryLogin("dispatcher", "wrong password!!"); code != http.StatusUnauthorized || !strings.Contains(body, `role="alert"`) {
		t.Errorf("wrong password: %d", code)
	}
	c.get("/login")
	resp, err := c.c.PostForm(c.base+"/login", url.Values{"csrf": {c.csrf}, "name": {"dispatcher"}, "password": {passwordOf("dispatcher")}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, r := range resp.Request.Response.Cookies() {
		if r.Name == sessionCookie && r.Value != "" {
			session = r
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure || session.Path != "/" {
		t.Errorf("session cookie flags on plain HTTP: %+v", session)
	}
	if code, body := c.get("/cases"); code != http.StatusOK || !strings.Contains(body, "dispatcher") {
		t.Fatalf("queue after login: %d", code)
	}
	if code, _ := c.post("/logout", url.Values{"csrf": {c.csrf}}); code != http.StatusOK {
		t.Errorf("logout: %d", code)
	}
	// The old cookie is dead in the store, not only in this jar.
	req, _ := http.NewRequest("GET", e.srv.URL+"/cases", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session.Value})
	r2, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r2.Header.Get("Location"), "/login") {
		t.Errorf("old session after logout: %d %s", r2.StatusCode, r2.Header.Get("Location"))
	}
}

func TestSecureCookieOption(t *testing.T) {
	e := newEnv(t, Options{SecureCookies: true})
	resp, err := http.Get(e.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Errorf("cookies with SecureCookies: %+v", cs)
	}
	for path, want := range map[string]int{"/static/app.js": 200, "/static/vendor/": 404, "/static/vendor/leaflet/leaflet.js": 200, "/nowhere": 404} {
		r, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, r.StatusCode, want)
		}
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.client(t)
	for i := 0; i < maxFails; i++ {
		if code, _ := c.tryLogin("north", "not the password"); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, code)
		}
	}
	if code, _ := c.tryLogin("north", passwordOf("north")); code != http.StatusTooManyRequests {
		t.Errorf("right password after %d failures: %d, want 429", maxFails, code)
	}
	// Another user from the same address is not locked out by north's failures.
	if code, _ := c.tryLogin("crew", passwordOf("crew")); code != http.StatusOK {
		t.Errorf("crew: %d", code)
	}
}

func TestLoginFormNeedsItsToken(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.client(t)
	c.get("/login")
	code, _ := c.post("/login", url.Values{"csrf": {"forged"}, "name": {"dispatcher"}, "password": {passwordOf("dispatcher")}})
	if code != http.StatusForbidden {
		t.Errorf("login with a forged token: %d", code)
	}
}

func TestForgedActionRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, st cases.StoreConfig) {
		e := newEnvOn(t, Options{}, st)
		e.dump(t, "truck-1", time.Now().Add(-time.Hour))
		c := e.client(t)
		c.login("dispatcher")
		for _, form := range []url.Values{
			{"action": {"reject"}, "note": {"forged"}},
			{"action": {"reject"}, "note": {"forged"}, "csrf": {"not-the-token"}},
		} {
			if code, _ := c.post("/cases/1/act", form); code != http.StatusForbidden {
				t.Errorf("forged POST %v: %d, want 403", form, code)
			}
		}
		got, _ := e.svc.Get(context.Background(), cases.System, 1)
		if got.State != cases.Dispatched || len(got.History) != 3 {
			t.Errorf("a forged POST changed the case: %s, %d history entries", got.State, len(got.History))
		}
		c.get("/cases/1")
		if code, _ := c.post("/cases/1/act", url.Values{"csrf": {c.csrf}, "action": {"comment"}, "note": {"real"}}); code != http.StatusOK {
			t.Errorf("genuine comment: %d", code)
		}
	})
}

func TestRolesSeeWhatTheAPILets(t *testing.T) {
	eachStore(t, func(t *testing.T, st cases.StoreConfig) {
		e := newEnvOn(t, Options{}, st)
		now := time.Now()
		e.dump(t, "truck-1", now.Add(-time.Hour))
		if err := e.svc.Raise(context.Background(), binOverflow("bin-7", now)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			user      string
			sees      []string
			forbidden []string
		}{
			{"dispatcher", []string{`href="/cases/1"`, `href="/cases/2"`}, nil},
			{"north", []string{`href="/cases/1"`}, []string{`href="/cases/2"`}},
			{"green", []string{`href="/cases/2"`}, []string{`href="/cases/1"`}},
			{"crew", nil, []string{`href="/cases/1"`, `href="/cases/2"`}},
		} {
			c := e.client(t)
			c.login(tc.user)
			_, body := c.get("/cases")
			for _, s := range tc.sees {
				if !strings.Contains(body, s) {
					t.Errorf("%s does not see %s in the queue", tc.user, s)
				}
			}
			for _, s := range tc.forbidden {
				if strings.Contains(body, s) {
					t.Errorf("%s sees %s in the queue", tc.user, s)
				}
				if code, _ := c.get(strings.TrimSuffix(strings.TrimPrefix(s, `href="`), `"`)); code != http.StatusNotFound {
					t.Errorf("%s opens %s: %d, want 404", tc.user, s, code)
				}
			}
		}
		// A unit may not reject; the district may not handle.
		green := e.client(t)
		green.login("green")
		green.get("/cases/2")
		if code, _ := green.post("/cases/2/act", url.Values{"csrf": {green.csrf}, "action": {"reject"}, "note": {"x"}}); code != http.StatusForbidden {
			t.Errorf("unit rejects: %d", code)
		}
		north := e.client(t)
		north.login("north")
		_, page := north.get("/cases/1")
		if strings.Contains(page, `id="a-handle"`) || !strings.Contains(page, `id="a-transfer"`) {
			t.Errorf("district's actions on a dispatched case are wrong")
		}
	})
}

func binOverflow(dev string, at time.Time) violations.Violation {
	return violations.Violation{Key: dev + at.String(), Type: "bin_overflow", Severity: "minor", Device: dev, Kind: "bin",
		District: "central", Contractor: "greenclean", Start: at, Summary: dev + " is full"}
}

func pngBytes(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := 0; x < 40; x++ {
		for y := 0; y < 30; y++ {
			img.Set(x, y, color.RGBA{uint8(x * 6), 120, uint8(y * 8), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (c *client) postPhoto(path string, fields map[string]string, name string, data []byte) (int, string) {
	c.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("photo", name)
	_, _ = fw.Write(data)
	mw.Close()
	resp, err := c.c.Post(c.base+path, mw.FormDataContentType(), &b)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func TestHandleWithPhoto(t *testing.T) {
	eachStore(t, func(t *testing.T, st cases.StoreConfig) {
		e := newEnvOn(t, Options{}, st)
		e.dump(t, "truck-1", time.Now().Add(-time.Hour))
		ctx := context.Background()
		if _, err := e.svc.Act(ctx, cases.Actor{Name: "d", Role: cases.RoleCity}, 1, cases.ActionRequest{Action: cases.Transfer, Unit: "enforcement-north"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Act(ctx, cases.Actor{Name: "d", Role: cases.RoleCity}, 1, cases.ActionRequest{Action: cases.Accept}); err != nil {
			t.Fatal(err)
		}
		crew := e.client(t)
		crew.login("crew")
		crew.get("/cases/1")
		f := map[string]string{"csrf": crew.csrf, "action": "handle", "note": "cleared"}
		code, _ := crew.postPhoto("/cases/1/act", f, "evil.png", []byte("<script>alert(1)</script>"))
		if code != http.StatusBadRequest {
			t.Errorf("a script named .png: %d, want 400", code)
		}
		if c, _ := e.svc.Get(ctx, cases.System, 1); c.State != cases.Accepted {
			t.Errorf("a refused photo changed the case: %s", c.State)
		}
		code, body := crew.postPhoto("/cases/1/act", f, "site.jpg", pngBytes(t))
		if code != http.StatusOK || !strings.Contains(body, `class="thumb"`) {
			t.Fatalf("handle with a photo: %d", code)
		}
		m := regexp.MustCompile(`/cases/1/photos/([A-Za-z0-9_-]+\.[a-z]+)`).FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no photo on the case page")
		}
		name := m[1]
		if !strings.HasSuffix(name, ".png") {
			t.Fatalf("stored name %q keeps the browser's extension", name)
		}
		if _, err := os.Stat(filepath.Join(e.dir, "photos", "1", name)); err != nil {
			t.Errorf("photo not stored: %v", err)
		}
		resp, err := crew.c.Get(crew.base + "/cases/1/photos/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got, pngBytes(t)) {
			t.Errorf("photo served: %d %s %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
		}
		green := e.client(t)
		green.login("green")
		if code, _ := green.get("/cases/1/photos/" + name); code != http.StatusNotFound {
			t.Errorf("another unit fetches the photo: %d", code)
		}
		if code, _ := crew.get("/cases/1/photos/..%2F..%2Fcases.db"); code != http.StatusNotFound {
			t.Errorf("path escape: %d", code)
		}
	})
}

func TestTileOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://{s}.tile.city.example/{z}/{x}/{y}.png": "https://*.tile.city.example",
		"http://maps.example:8080/t/{z}/{x}/{y}.png":    "http://maps.example:8080",
		"javascript:alert(1)":                           "",
		"https://evil.example; script-src *":            "",
		"":                                              "",
	} {
		if got := origin(raw); got != want {
			t.Errorf("origin(%q) = %q, want %q", raw, got, want)
		}
	}
}
