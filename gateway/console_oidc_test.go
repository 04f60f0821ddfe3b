package gateway

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sanigate/sanigate/fleet"
)

// console.oidc reaches the console with the secret read from its file.
func TestConsoleOIDCFromConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := fleet.Parse(filepath.Join(dir, "sanigate.yaml"), []byte(`devices: []
console:
  oidc:
    issuer: https://id.city.example/
    provider_name: City ID
    client_id: console
    client_secret_file: secret
    redirect_url: https://console.city.example/login/oidc/callback
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := consoleOIDC(cfg)
	if err != nil || o == nil {
		t.Fatalf("consoleOIDC: %+v %v", o, err)
	}
	if o.Issuer != "https://id.city.example/" || o.ClientID != "console" || o.ClientSecret != "from-file" ||
		o.ProviderName != "City ID" || o.UserClaim != "preferred_username" || o.RedirectURL != "https://console.city.example/login/oidc/callback" {
		t.Errorf("console OIDC options: %+v", o)
	}
	cfg.Console.OIDC.ClientSecretFile = "missing"
	if _, err := consoleOIDC(cfg); err == nil {
		t.Error("a missing secret file was not reported")
	}
	plain, err := fleet.Parse("x.yaml", []byte("devices: []\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := consoleOIDC(plain); o != nil || err != nil {
		t.Errorf("without console.oidc: %+v %v", o, err)
	}
}
