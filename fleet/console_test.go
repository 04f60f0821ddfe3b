package fleet

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConsoleOIDCDefaultsAndSecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "oidc-secret"), []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `devices: []
console:
  oidc:
    issuer: https://id.city.example/realms/sanitation
    client_id: sanigate-console
    client_secret_file: oidc-secret
    redirect_url: https://console.city.example/login/oidc/callback
`
	cfg, err := Parse(filepath.Join(dir, "sanigate.yaml"), []byte(yml), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Console.OIDC
	if !o.Enabled() || o.UserClaim != "preferred_username" || o.ProviderName != "id.city.example" || strings.Join(o.Scopes, " ") != "profile email" {
		t.Errorf("defaults: %+v", o)
	}
	if s, err := cfg.OIDCClientSecret(); err != nil || s != "s3cret-from-file" {
		t.Errorf("secret from file: %q %v", s, err)
	}
	env := map[string]string{"SANIGATE_CONSOLE_OIDC_CLIENT_SECRET": "s3cret-from-env"}
	cfg, err = Parse(filepath.Join(dir, "sanigate.yaml"), []byte(yml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if s, err := cfg.OIDCClientSecret(); err != nil || s != "s3cret-from-env" {
		t.Errorf("secret from the environment: %q %v", s, err)
	}
	cfg, err = Parse("x.yaml", []byte("devices: []\n"), nil)
	if err != nil || cfg.Console.OIDC.Enabled() {
		t.Errorf("OIDC enabled without settings: %v", err)
	}
}

func TestConsoleOIDCProblems(t *testing.T) {
	yml := `devices: []
console:
  oidc:
    issuer: http://id.city.example/
    client_secret: a
    client_secret_file: b
    redirect_url: https://console.city.example/callback
    scope: openid
`
	_, err := Parse("x.yaml", []byte(yml), nil)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want Problems", err)
	}
	want := map[string]int{
		"console.oidc.issuer":             4,
		"console.oidc.client_id":          4,
		"console.oidc.client_secret_file": 6,
		"console.oidc.redirect_url":       7,
		"console.oidc.scope":              8,
	}
	got := map[string]int{}
	for _, p := range ps {
		got[p.Field] = p.Line
	}
	for field, line := range want {
		if l, ok := got[field]; !ok || l != line {
			t.Errorf("%s: got line %d (reported %v), want %d\n%v", field, l, ok, line, err)
		}
	}
	if !strings.Contains(err.Error(), "plain http is allowed only on loopback") {
		t.Errorf("no reason for the http issuer:\n%v", err)
	}
	_, err = Parse("x.yaml", []byte("devices: []\nconsole:\n  oidc:\n    client_id: x\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "console.oidc.issuer") {
		t.Errorf("client_id without issuer: %v", err)
	}
	_, err = Parse("x.yaml", []byte("devices: []\nconsole:\n  oidc:\n    issuer: http://127.0.0.1:9000/\n    client_id: x\n    redirect_url: http://127.0.0.1:8080/login/oidc/callback\n"), nil)
	if err != nil {
		t.Errorf("loopback http refused: %v", err)
	}
}
