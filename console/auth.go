package console

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/sanigate/sanigate/cases"
)

const (
	sessionCookie = "sanigate_session"
	loginCookie   = "sanigate_login"
)

// request is what a handler behind auth knows about who asks.
type request struct {
	sess  cases.Session
	token string
	who   cases.Actor
	lang  string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, q *request)

// auth lets only a live session through; a state-changing request must
// also carry the session's CSRF token (form field csrf or X-CSRF-Token).
func (c *Console) auth(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		ck, err := r.Cookie(sessionCookie)
		var sess cases.Session
		if err == nil {
			sess, err = c.svc.SessionOf(r.Context(), ck.Value)
		}
		if err != nil {
			if !errors.Is(err, http.ErrNoCookie) && !errors.Is(err, cases.ErrNoSession) {
				c.log.Error("console session lookup failed", "err", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		q := &request{sess: sess, token: ck.Value, who: sess.User.Actor(), lang: sess.User.Lang}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxPhotoBytes+(1<<20))
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				err = r.ParseMultipartForm(1 << 20)
			} else {
				err = r.ParseForm()
			}
			if err != nil {
				http.Error(w, "the form could not be read: "+err.Error(), http.StatusBadRequest)
				return
			}
			tok := r.PostFormValue("csrf")
			if tok == "" {
				tok = r.Header.Get("X-CSRF-Token")
			}
			if !cases.CSRFEqual(tok, sess.CSRF) {
				c.log.Warn("console request refused: bad CSRF token", "user", sess.User.Name, "path", r.URL.Path)
				http.Error(w, c.tr(q.lang, "err.csrf"), http.StatusForbidden)
				return
			}
		}
		h(w, r, q)
	})
}

// secure says whether cookies must be marked Secure for this request.
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opt.SecureCookies }

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// localPath keeps a redirect target on this site.
func localPath(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// guestLang picks the login page's language from the query or the browser.
func guestLang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "en" || l == "zh" {
		return l
	}
	if al := r.Header.Get("Accept-Language"); al != "" && !strings.HasPrefix(strings.ToLower(al), "zh") {
		return "en"
	}
	return "zh"
}

type loginData struct {
	page
	Next  string
	Error string
	Name  string
	// OIDC is the text of the identity provider's button ("" without one).
	OIDC string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, loginData{Next: localPath(r.URL.Query().Get("next"))})
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	tok := randomString()
	c.setCookie(w, r, loginCookie, tok, 3600)
	w.Header().Set("Cache-Control", "no-store")
	d.page = page{Lang: guestLang(r), CSRF: tok, Title: "login"}
	d.OIDC = c.oidcButton(d.Lang)
	c.render(w, status, "login", &d)
}

// clientIP is the connection's address; forwarded headers are not trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	d := loginData{Next: localPath(r.PostFormValue("next")), Name: name}
	lang := guestLang(r)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !cases.CSRFEqual(r.PostFormValue("csrf"), ck.Value) {
		d.Error = c.tr(lang, "err.csrf")
		c.renderLogin(w, r, http.StatusForbidden, d)
		return
	}
	keys := []string{"user:" + strings.ToLower(name), "ip:" + clientIP(r)}
	if wait := c.throttle.blocked(keys...); wait > 0 {
		c.log.Warn("console login throttled", "user", name, "ip", clientIP(r))
		w.Header().Set("Retry-After", itoa(int(wait.Seconds())+1))
		d.Error = c.tr(lang, "err.throttled")
		c.renderLogin(w, r, http.StatusTooManyRequests, d)
		return
	}
	u, err := c.svc.Login(r.Context(), name, r.PostFormValue("password"))
	if err != nil {
		if !errors.Is(err, cases.ErrBadLogin) {
			c.log.Error("console login failed", "err", err)
		}
		c.throttle.fail(keys...)
		c.log.Info("console login refused", "user", name, "ip", clientIP(r))
		d.Error = c.tr(lang, "err.login")
		c.renderLogin(w, r, http.StatusUnauthorized, d)
		return
	}
	c.throttle.reset(keys[0])
	tok, _, err := c.svc.NewSession(r.Context(), u, c.opt.SessionTTL)
	if err != nil {
		c.log.Error("console session not created", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, r, loginCookie, "", -1)
	c.setCookie(w, r, sessionCookie, tok, int(c.opt.SessionTTL.Seconds()))
	c.log.Info("console login", "user", u.Name, "role", u.Role, "ip", clientIP(r))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, q *request) {
	if err := c.svc.EndSession(r.Context(), q.token); err != nil {
		c.log.Error("console logout failed", "err", err)
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
