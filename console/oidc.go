package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sanigate/sanigate/cases"
)

// OIDC configures the optional login through a city's identity provider
// (OpenID Connect, authorization code flow with PKCE). It only
// authenticates: the user the ID token names must already exist in the case
// store, which gives its role; an unknown name is refused, never created.
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// at the first login.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the console's /login/oidc/callback as the browser
	// reaches it.
	RedirectURL string
	// ProviderName is shown on the login button.
	ProviderName string
	// UserClaim names the user (default preferred_username); when the
	// token lacks it, a verified email is used.
	UserClaim string
	// Scopes asked for besides openid (default profile, email).
	Scopes []string
	// Client talks to the provider (default: a client with a 15 s timeout).
	Client *http.Client
}

const (
	oidcCookie   = "sanigate_oidc"
	oidcFlowTTL  = 10 * time.Minute
	oidcMaxClaim = 64
)

// oidcLogin holds the provider, discovered at the first use, and the
// flows already completed, so that a callback cannot be replayed.
type oidcLogin struct {
	cfg OIDC

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	done     map[string]time.Time // nonce of a completed flow -> when it may be forgotten
}

func newOIDCLogin(cfg OIDC) (*oidcLogin, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, fmt.Errorf("console: oidc needs the issuer, the client id and the redirect URL")
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "preferred_username"
	}
	if cfg.ProviderName == "" {
		cfg.ProviderName = cfg.Issuer
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"profile", "email"}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 15 * time.Second}
	}
	return &oidcLogin{cfg: cfg, done: map[string]time.Time{}}, nil
}

func (o *oidcLogin) context(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, o.cfg.Client), o.cfg.Client)
}

// setup discovers the provider once; a failure is retried at the next login.
func (o *oidcLogin) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.oauth != nil {
		return o.oauth, o.verifier, nil
	}
	// The provider's keys are fetched later with this context: it must
	// outlive the request.
	p, err := oidc.NewProvider(o.context(context.WithoutCancel(ctx)), o.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidc discovery of %s: %w", o.cfg.Issuer, err)
	}
	scopes := append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...)
	o.oauth = &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: scopes}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID})
	return o.oauth, o.verifier, nil
}

// complete records a flow's nonce as used; false when it already was.
func (o *oidcLogin) complete(nonce string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for n, until := range o.done {
		if now.After(until) {
			delete(o.done, n)
		}
	}
	if _, used := o.done[nonce]; used {
		return false
	}
	o.done[nonce] = now.Add(oidcFlowTTL)
	return true
}

// oidcFlow is what the browser keeps between the start of a login and the
// provider's callback, in a short-lived HttpOnly cookie. Its values are
// random and only bind the callback to the browser that started it.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"`
}

func (f oidcFlow) encode() string {
	b, _ := json.Marshal(f)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeFlow(s string) (oidcFlow, bool) {
	var f oidcFlow
	if len(s) > 2048 {
		return f, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return oidcFlow{}, false
	}
	return f, true
}

func (c *Console) setFlowCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	// Lax, not Strict: the provider's redirect back is a cross-site
	// navigation, and the cookie must come with it.
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: value, Path: "/login/oidc", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
}

// oidcStart sends the browser to the provider.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	lang := guestLang(r)
	conf, _, err := c.oidc.setup(r.Context())
	if err != nil {
		c.log.Error("console oidc login unavailable", "err", err)
		c.renderLogin(w, r, http.StatusBadGateway, loginData{Next: localPath(r.URL.Query().Get("next")), Error: c.tr(lang, "err.oidc.down")})
		return
	}
	f := oidcFlow{State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		Next: localPath(r.URL.Query().Get("next")), Expires: c.now().Add(oidcFlowTTL).Unix()}
	c.setFlowCookie(w, r, f.encode(), int(oidcFlowTTL.Seconds()))
	http.Redirect(w, r, conf.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusSeeOther)
}

// oidcCallback takes the provider's answer, checks it and opens a session.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	lang := guestLang(r)
	refuse := func(status int, key, why string, args ...any) {
		c.log.Warn("console oidc login refused", append([]any{"reason", why, "ip", clientIP(r)}, args...)...)
		c.renderLogin(w, r, status, loginData{Next: "/", Error: c.tr(lang, key)})
	}
	c.setFlowCookie(w, r, "", -1) // a flow is used once, whatever happens
	ck, err := r.Cookie(oidcCookie)
	if err != nil {
		refuse(http.StatusBadRequest, "err.oidc", "no flow cookie")
		return
	}
	f, ok := decodeFlow(ck.Value)
	q := r.URL.Query()
	switch {
	case !ok:
		refuse(http.StatusBadRequest, "err.oidc", "unreadable flow cookie")
		return
	case !cases.CSRFEqual(q.Get("state"), f.State):
		refuse(http.StatusBadRequest, "err.oidc", "state does not match")
		return
	case c.now().Unix() > f.Expires:
		refuse(http.StatusBadRequest, "err.oidc", "flow expired")
		return
	case q.Get("error") != "":
		refuse(http.StatusUnauthorized, "err.oidc", "provider error", "error", clip(q.Get("error")), "description", clip(q.Get("error_description")))
		return
	case q.Get("code") == "":
		refuse(http.StatusBadRequest, "err.oidc", "no code")
		return
	}
	name, err := c.oidcIdentify(r.Context(), q.Get("code"), f)
	if err != nil {
		refuse(http.StatusUnauthorized, "err.oidc", "token refused", "err", err)
		return
	}
	u, err := c.svc.UserByName(r.Context(), name)
	if err != nil || u.Disabled {
		if err != nil && !errors.Is(err, cases.ErrBadLogin) {
			c.log.Error("console oidc user lookup failed", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		c.log.Warn("console oidc login refused", "reason", "no such user", "user", name, "ip", clientIP(r))
		c.renderLogin(w, r, http.StatusForbidden, loginData{Next: "/", Error: fmt.Sprintf(c.tr(lang, "err.oidc.unknown"), name)})
		return
	}
	c.openSession(w, r, u, f.Next, "oidc")
}

// oidcIdentify exchanges the code, verifies the ID token (signature,
// issuer, audience, expiry, nonce) and returns the user name it holds.
func (c *Console) oidcIdentify(ctx context.Context, code string, f oidcFlow) (string, error) {
	conf, verifier, err := c.oidc.setup(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(c.oidc.context(ctx), 20*time.Second)
	defer cancel()
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return "", fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the provider sent no ID token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("ID token: %w", err)
	}
	if !cases.CSRFEqual(idt.Nonce, f.Nonce) {
		return "", errors.New("ID token: nonce does not match")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("ID token claims: %w", err)
	}
	name := userFromClaims(claims, c.oidc.cfg.UserClaim)
	if name == "" {
		return "", fmt.Errorf("ID token names no user in %s or a verified email", c.oidc.cfg.UserClaim)
	}
	if !c.oidc.complete(f.Nonce, c.now()) {
		return "", errors.New("this sign-in was already used")
	}
	return name, nil
}

// userFromClaims reads the user name from claim, or else from a verified
// email.
func userFromClaims(claims map[string]any, claim string) string {
	if s, ok := claims[claim].(string); ok && s != "" && len(s) <= oidcMaxClaim {
		return s
	}
	email, _ := claims["email"].(string)
	verified, _ := claims["email_verified"].(bool)
	if email == "" || len(email) > oidcMaxClaim || !verified {
		return ""
	}
	return email
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

// openSession starts the session of a user who proved who they are, with
// the same cookie as a password login, and goes on to next. After a
// provider's redirect the browser is still in a cross-site navigation, in
// which it withholds the SameSite=Strict session cookie; a page of this
// site that moves on by itself makes the next request same-site.
func (c *Console) openSession(w http.ResponseWriter, r *http.Request, u cases.User, next, how string) {
	tok, _, err := c.svc.NewSession(r.Context(), u, c.opt.SessionTTL)
	if err != nil {
		c.log.Error("console session not created", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	c.setCookie(w, r, loginCookie, "", -1)
	c.setCookie(w, r, sessionCookie, tok, int(c.opt.SessionTTL.Seconds()))
	c.log.Info("console login", "user", u.Name, "role", u.Role, "ip", clientIP(r), "by", how)
	next = localPath(next)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	esc := template.HTMLEscapeString(next)
	fmt.Fprintf(w, `<!doctype html><html lang="%s"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=%s">`+
		`<title>%s</title></head><body><p><a id="continue" href="%s">%s</a></p></body></html>`,
		template.HTMLEscapeString(u.Lang), esc, template.HTMLEscapeString(c.tr(u.Lang, "app")), esc, template.HTMLEscapeString(c.tr(u.Lang, "oidc.continue")))
}

func init() {
	for lang, m := range map[string]map[string]string{
		"zh": {
			"oidc.login": "通过 %s 登录", "oidc.or": "或使用用户名和密码", "oidc.continue": "继续",
			"err.oidc":         "统一身份认证登录失败或已失效，请重新登录",
			"err.oidc.unknown": "用户 %s 不是本调度台的用户，请联系管理员添加",
			"err.oidc.down":    "暂时无法连接统一身份认证服务，请稍后再试或使用密码登录",
		},
		"en": {
			"oidc.login": "Sign in with %s", "oidc.or": "or with a user name and password", "oidc.continue": "Continue",
			"err.oidc":         "The sign-in through the identity provider failed or expired; please start again",
			"err.oidc.unknown": "%s is not a user of this console; ask an administrator to add the user",
			"err.oidc.down":    "The identity provider cannot be reached; try again later or log in with a password",
		},
	} {
		for k, v := range m {
			messages[lang][k] = v
		}
	}
}

// oidcButton is the login button's text, or "" without OIDC.
func (c *Console) oidcButton(lang string) string {
	if c.oidc == nil {
		return ""
	}
	return strings.Replace(c.tr(lang, "oidc.login"), "%s", c.oidc.cfg.ProviderName, 1)
}
