package console

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/sanigate/sanigate/cases"
)

// oidcEnv is the console with its OIDC login pointed at a real OpenID
// provider (discovery, JWKS, RS256-signed tokens, PKCE) on loopback.
type oidcEnv struct {
	*env
	idp *mockoidc.MockOIDC
}

func newOIDCEnv(t *testing.T) *oidcEnv { return newOIDCEnvWith(t, false) }

// newOIDCEnvWith, with signInPage, has the provider show a page with a
// sign-in button before it sends the browser back, as a real provider's
// login page does; the way back is then a navigation started by the
// provider's site.
func newOIDCEnvWith(t *testing.T, signInPage bool) *oidcEnv {
	t.Helper()
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if signInPage {
		_ = idp.AddMiddleware(providerSignInPage)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	e := newEnv(t, Options{OIDC: &OIDC{Issuer: idp.Issuer(), ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
		RedirectURL: "http://127.0.0.1/unset", ProviderName: "City ID"}})
	// The console's address is known only once it listens; the provider
	// is not contacted before the first login.
	e.con.oidc.cfg.RedirectURL = e.srv.URL + "/login/oidc/callback"
	return &oidcEnv{env: e, idp: idp}
}

// providerSignInPage answers an authorization request first with a form
// that repeats it, signed in, when its button is pressed.
func providerSignInPage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mockoidc.AuthorizationEndpoint || r.URL.Query().Get("signed_in") != "" {
			next.ServeHTTP(w, r)
			return
		}
		var b strings.Builder
		b.WriteString(`<!doctype html><title>City ID</title><form method="get" action="` + mockoidc.AuthorizationEndpoint + `">`)
		for k, vs := range r.URL.Query() {
			for _, v := range vs {
				fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(v))
			}
		}
		b.WriteString(`<input type="hidden" name="signed_in" value="1"><button id="signin">Sign in</button></form>`)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, b.String())
	})
}

// person queues who the provider will say signs in next.
func (e *oidcEnv) person(name, email string) {
	e.idp.QueueUser(&mockoidc.MockUser{Subject: "sub-" + name + email, PreferredUsername: name, Email: email, EmailVerified: true})
}

// englishTransport asks for English pages, as an English browser does.
type englishTransport struct{}

func (englishTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", "en")
	return http.DefaultTransport.RoundTrip(r)
}

// oidcClient is a client with a cookie jar that follows redirects (c) and one
// on the same jar that stops at each (step).
type oidcClient struct {
	*client
	jar  http.CookieJar
	step *http.Client
}

func (e *oidcEnv) browser(t *testing.T) *oidcClient {
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: e.srv.URL, c: &http.Client{Jar: jar, Transport: englishTransport{}, Timeout: 20 * time.Second}}
	step := &http.Client{Jar: jar, Transport: englishTransport{}, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &oidcClient{client: c, jar: jar, step: step}
}

// fetch gets u without following a redirect.
func (b *oidcClient) fetch(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.step.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// toProvider starts a login and returns the provider's authorization URL
// and the flow cookie as the console set it.
func (b *oidcClient) toProvider(next string) (string, *http.Cookie) {
	b.t.Helper()
	resp, _ := b.fetch(b.base + "/login/oidc?next=" + url.QueryEscape(next))
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("start of the OIDC login: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == oidcCookie {
			return resp.Header.Get("Location"), ck
		}
	}
	b.t.Fatal("no flow cookie set")
	return "", nil
}

// callbackURL goes through the provider and returns where it sends the
// browser back, without going there.
func (b *oidcClient) callbackURL(authURL string) string {
	b.t.Helper()
	resp, body := b.fetch(authURL)
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("provider's authorization: %d %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

func (b *oidcClient) flowCookie() *http.Cookie {
	u, _ := url.Parse(b.base + "/login/oidc/callback")
	for _, ck := range b.jar.Cookies(u) {
		if ck.Name == oidcCookie {
			return ck
		}
	}
	return nil
}

func (b *oidcClient) loggedIn() bool {
	b.t.Helper()
	code, body := b.get("/cases")
	return code == http.StatusOK && strings.Contains(body, `id="queue-body"`)
}

func TestOIDCLoginOpensAWorkingSession(t *testing.T) {
	e := newOIDCEnv(t)
	e.dump(t, "truck-1", time.Now().Add(-time.Hour))
	b := e.browser(t)
	if code, body := b.get("/login"); code != http.StatusOK || !strings.Contains(body, `id="oidc-login"`) || !strings.Contains(body, "Sign in with City ID") {
		t.Fatalf("login page without the provider's button: %d", code)
	}
	auth, flow := b.toProvider("/cases/1")
	au, err := url.Parse(auth)
	if err != nil || !strings.HasPrefix(auth, e.idp.AuthorizationEndpoint()) {
		t.Fatalf("sent to %q, not to the provider", auth)
	}
	q := au.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Errorf("authorization request lacks PKCE, nonce or state: %v", q)
	}
	if !strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("scope %q lacks openid", q.Get("scope"))
	}
	if !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.MaxAge <= 0 || flow.MaxAge > 900 || flow.Path != "/login/oidc" {
		t.Errorf("flow cookie %+v: want HttpOnly, SameSite=Lax, short-lived, on /login/oidc", flow)
	}

	e.person("dispatcher", "dispatcher@city.example")
	resp, err := b.c.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `http-equiv="refresh" content="0;url=/cases/1"`) {
		t.Fatalf("callback: %d %s", resp.StatusCode, page)
	}
	if b.flowCookie() != nil {
		t.Error("the flow cookie outlived the callback")
	}
	if code, body := b.get("/cases/1"); code != http.StatusOK || !strings.Contains(body, "dispatcher") {
		t.Fatalf("case page after the OIDC login: %d", code)
	}
	if code, _ := b.post("/cases/1/act", url.Values{"action": {"comment"}, "note": {"forged"}}); code != http.StatusForbidden {
		t.Errorf("action without the CSRF token: %d, want 403", code)
	}
	if code, _ := b.post("/cases/1/act", url.Values{"csrf": {b.csrf}, "action": {"comment"}, "note": {"through the provider"}}); code != http.StatusOK {
		t.Errorf("action with the CSRF token: %d", code)
	}
	got, err := e.svc.Get(context.Background(), cases.System, 1)
	if err != nil {
		t.Fatal(err)
	}
	last := got.History[len(got.History)-1]
	if last.Actor != "dispatcher" || last.Note != "through the provider" {
		t.Errorf("last history entry %+v, want the dispatcher's comment", last)
	}
	// The password login stays.
	pw := e.client(t)
	pw.login("north")
}

func TestOIDCUnknownUserRefused(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser(t)
	auth, _ := b.toProvider("/cases")
	e.person("stranger", "stranger@city.example")
	resp, err := b.c.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "stranger is not a user of this console") {
		t.Errorf("unknown user: %d %s", resp.StatusCode, body)
	}
	if b.loggedIn() {
		t.Error("an unknown user got a session")
	}
	users, err := e.svc.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Name == "stranger" {
			t.Error("the unknown user was created")
		}
	}
}

func TestOIDCEmailFallback(t *testing.T) {
	for _, tc := range []struct {
		claims map[string]any
		want   string
	}{
		{map[string]any{"preferred_username": "north", "email": "n@city.example", "email_verified": true}, "north"},
		{map[string]any{"email": "n@city.example", "email_verified": true}, "n@city.example"},
		{map[string]any{"email": "n@city.example", "email_verified": false}, ""},
		{map[string]any{"email": "n@city.example"}, ""},
		{map[string]any{"preferred_username": 7}, ""},
		{map[string]any{"preferred_username": strings.Repeat("x", 65)}, ""},
	} {
		if got := userFromClaims(tc.claims, "preferred_username"); got != tc.want {
			t.Errorf("userFromClaims(%v) = %q, want %q", tc.claims, got, tc.want)
		}
	}
}

func TestOIDCTamperedStateRefused(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser(t)
	auth, _ := b.toProvider("/cases")
	e.person("dispatcher", "")
	cb := b.callbackURL(auth)
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", q.Get("state")+"x")
	u.RawQuery = q.Encode()
	resp, body := b.fetch(u.String())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "identity provider failed") {
		t.Errorf("tampered state: %d %s", resp.StatusCode, body)
	}
	if b.loggedIn() {
		t.Error("a tampered state opened a session")
	}
	// The flow is spent: the genuine callback after it is refused too.
	if resp, _ := b.fetch(cb); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("genuine callback after a tampered one: %d", resp.StatusCode)
	}
	if b.loggedIn() {
		t.Error("a spent flow opened a session")
	}
}

func TestOIDCReplayedCallbackRefused(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser(t)
	auth, flow := b.toProvider("/cases")
	e.person("dispatcher", "")
	cb := b.callbackURL(auth)
	if resp, _ := b.fetch(cb); resp.StatusCode != http.StatusOK || !b.loggedIn() {
		t.Fatalf("first callback: %d", resp.StatusCode)
	}
	// The same browser again: its flow cookie is gone.
	again := e.browser(t)
	if resp, _ := again.fetch(cb); resp.StatusCode != http.StatusBadRequest || again.loggedIn() {
		t.Errorf("callback replayed without the flow cookie: %d", resp.StatusCode)
	}
	// Someone who copied both the callback URL and the flow cookie: the
	// provider still accepts the code, the console does not.
	thief := e.browser(t)
	base, _ := url.Parse(e.srv.URL + "/login/oidc/")
	thief.jar.SetCookies(base, []*http.Cookie{{Name: oidcCookie, Value: flow.Value, Path: "/login/oidc"}})
	resp, body := thief.fetch(cb)
	if resp.StatusCode != http.StatusUnauthorized || thief.loggedIn() {
		t.Errorf("replayed callback with the flow cookie: %d %s", resp.StatusCode, body)
	}
}

func TestOIDCForeignNonceRefused(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser(t)
	auth, _ := b.toProvider("/cases")
	u, _ := url.Parse(auth)
	q := u.Query()
	q.Set("nonce", "a-nonce-from-another-flow")
	u.RawQuery = q.Encode()
	e.person("dispatcher", "")
	cb := b.callbackURL(u.String())
	if resp, _ := b.fetch(cb); resp.StatusCode != http.StatusUnauthorized || b.loggedIn() {
		t.Errorf("ID token with a foreign nonce: %d", resp.StatusCode)
	}
}

func TestOIDCWrongVerifierRefused(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser(t)
	auth, flow := b.toProvider("/cases")
	f, ok := decodeFlow(flow.Value)
	if !ok {
		t.Fatal("unreadable flow cookie")
	}
	f.Verifier = "a-verifier-that-does-not-match-the-challenge-sent-0123456789"
	base, _ := url.Parse(e.srv.URL + "/login/oidc/")
	b.jar.SetCookies(base, []*http.Cookie{{Name: oidcCookie, Value: f.encode(), Path: "/login/oidc"}})
	e.person("dispatcher", "")
	cb := b.callbackURL(auth)
	if resp, _ := b.fetch(cb); resp.StatusCode != http.StatusUnauthorized || b.loggedIn() {
		t.Errorf("code exchanged with a wrong PKCE verifier: %d", resp.StatusCode)
	}
}

func TestOIDCProviderDownShowsError(t *testing.T) {
	e := newEnv(t, Options{OIDC: &OIDC{Issuer: "http://127.0.0.1:1/none", ClientID: "c", RedirectURL: "http://127.0.0.1/login/oidc/callback"}})
	c := e.client(t)
	code, body := c.get("/login/oidc?lang=en")
	if code != http.StatusBadGateway || !strings.Contains(body, `id="login"`) {
		t.Errorf("provider down: %d", code)
	}
}

func TestNoOIDCNoButton(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.client(t)
	if _, body := c.get("/login"); strings.Contains(body, "oidc-login") {
		t.Error("the login page shows a provider's button without OIDC")
	}
	if code, _ := c.get("/login/oidc/callback?code=x&state=y"); code != http.StatusNotFound {
		t.Errorf("callback without OIDC: %d, want 404", code)
	}
}

// TestOIDCLoginInChromium signs in through the provider in a real browser.
// The console is reached as localhost and the provider as 127.0.0.1, two
// different sites, so the provider's redirect back is a cross-site
// navigation, as with a real identity provider: the session cookie
// (SameSite=Strict) must still be in place when the queue is loaded.
func TestOIDCLoginInChromium(t *testing.T) {
	ctx := browser(t)
	e := newOIDCEnvWith(t, true)
	site := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	e.con.oidc.cfg.RedirectURL = site + "/login/oidc/callback"
	e.person("dispatcher", "")
	step(t, ctx, "login page", chromedp.Navigate(site+"/login?lang=en"), chromedp.WaitVisible(chromedp.CSS("#oidc-login")))
	step(t, ctx, "to the provider", chromedp.Click(chromedp.CSS("#oidc-login")), chromedp.WaitVisible(chromedp.CSS("#signin")))
	step(t, ctx, "sign in at the provider", chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#queue-body")))
	loc := eval[string](t, ctx, "location.href")
	who := eval[string](t, ctx, "document.querySelector('header').innerText")
	if !strings.HasPrefix(loc, site+"/") || !strings.Contains(who, "dispatcher") {
		t.Errorf("after the sign-in: at %s, header %q", loc, who)
	}
}
