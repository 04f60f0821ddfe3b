package fleet

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// OIDCCallbackPath is where the identity provider sends the browser back;
// console.oidc.redirect_url must end in it.
const OIDCCallbackPath = "/login/oidc/callback"

// ConsoleConfig configures the dispatcher console.
type ConsoleConfig struct {
	// OIDC, when its issuer is set, adds a login through the city's
	// identity provider next to the password login.
	OIDC OIDCConfig `yaml:"oidc"`
}

// OIDCConfig is an OpenID Connect client of the city's identity provider.
// It only authenticates: the user it names must already exist in the case
// store, which gives the role.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL (https; http only on loopback).
	Issuer string `yaml:"issuer"`
	// ProviderName is shown on the login button (default: the issuer's host).
	ProviderName string `yaml:"provider_name"`
	ClientID     string `yaml:"client_id"`
	// ClientSecret, or ClientSecretFile (a file holding it), or the
	// SANIGATE_CONSOLE_OIDC_CLIENT_SECRET variable; none for a public client.
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// RedirectURL is the console's callback as the browser reaches it
	// ("https://console.example/login/oidc/callback").
	RedirectURL string `yaml:"redirect_url"`
	// UserClaim is the ID token claim that names the user (default
	// preferred_username; a verified email is the fallback).
	UserClaim string `yaml:"user_claim"`
	// Scopes asked for besides openid (default profile, email).
	Scopes []string `yaml:"scopes"`
}

// Enabled says whether the OIDC login is configured.
func (o OIDCConfig) Enabled() bool { return o.Issuer != "" }

func (c *Config) applyConsoleDefaults() {
	o := &c.Console.OIDC
	if !o.Enabled() {
		return
	}
	if o.UserClaim == "" {
		o.UserClaim = "preferred_username"
	}
	if o.ProviderName == "" {
		if u, err := url.Parse(o.Issuer); err == nil && u.Host != "" {
			o.ProviderName = u.Hostname()
		}
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"profile", "email"}
	}
}

func (c *Config) validateConsole(add func(path, format string, args ...any)) {
	o := c.Console.OIDC
	if !o.Enabled() {
		if o.ClientID != "" || o.RedirectURL != "" || o.ClientSecret != "" || o.ClientSecretFile != "" {
			add("console.oidc.issuer", "missing: set the identity provider's issuer URL, or remove the oidc settings")
		}
		return
	}
	if err := checkOIDCURL(o.Issuer); err != nil {
		add("console.oidc.issuer", "%v", err)
	}
	if o.ClientID == "" {
		add("console.oidc.client_id", "missing: the client id the identity provider gave the console")
	}
	if o.ClientSecret != "" && o.ClientSecretFile != "" {
		add("console.oidc.client_secret_file", "set client_secret or client_secret_file, not both")
	}
	if err := checkOIDCURL(o.RedirectURL); err != nil {
		add("console.oidc.redirect_url", "%v", err)
	} else if u, _ := url.Parse(o.RedirectURL); u.Path != OIDCCallbackPath || u.RawQuery != "" {
		add("console.oidc.redirect_url", "%q must be the console's address followed by %s", o.RedirectURL, OIDCCallbackPath)
	}
	if strings.TrimSpace(o.UserClaim) != o.UserClaim || o.UserClaim == "sub" {
		add("console.oidc.user_claim", "%q cannot name a console user (use preferred_username, email or a name claim)", o.UserClaim)
	}
}

// checkOIDCURL accepts an https URL, or http on a loopback host.
func checkOIDCURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an https URL", s)
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%q: plain http is allowed only on loopback; use https", s)
		}
	}
	if u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q may hold no user or fragment", s)
	}
	return nil
}

// OIDCClientSecret returns the console's OIDC client secret from the file
// or the setting ("" for a public client).
func (c *Config) OIDCClientSecret() (string, error) {
	o := c.Console.OIDC
	if o.ClientSecretFile == "" {
		return o.ClientSecret, nil
	}
	b, err := os.ReadFile(c.Resolve(o.ClientSecretFile))
	if err != nil {
		return "", fmt.Errorf("console.oidc.client_secret_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
