package gateway

import (
	"fmt"
	"os"
	"strings"

	"github.com/sanigate/sanigate/console"
	"github.com/sanigate/sanigate/fleet"
)

// consoleHandler builds the dispatcher console on the case service, with
// the city's map as its base layers. SANIGATE_CONSOLE_TILES names an
// optional tile server; SANIGATE_CONSOLE_SECURE_COOKIES=1 marks cookies
// Secure behind a proxy that terminates TLS.
func (g *Gateway) consoleHandler() (*console.Console, error) {
	cfg := g.cfg
	token, err := cfg.InfluxToken()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	oidc, err := consoleOIDC(cfg)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	secure := os.Getenv("SANIGATE_CONSOLE_SECURE_COOKIES") == "1" || (oidc != nil && strings.HasPrefix(oidc.RedirectURL, "https://"))
	c, err := console.New(console.Options{
		History: newInfluxHistory(cfg.InfluxDB.URL, cfg.InfluxDB.Bucket, token),
		Cases:   g.cases, Layers: mapLayers(cfg), TileURL: os.Getenv("SANIGATE_CONSOLE_TILES"),
		PhotoDir: cfg.Resolve(cfg.Spool.Dir) + "-photos", SecureCookies: secure, OIDC: oidc,
		Calendar: cfg.WorkCalendar, Location: cfg.Location(), Logger: g.log.With("component", "console"),
	})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	g.console = c
	return c, nil
}

// mapLayers names the places files of cfg the console draws as its map.
func mapLayers(cfg *fleet.Config) map[string]string {
	layers := map[string]string{}
	for name, path := range map[string]string{"districts": cfg.Places.Districts, "sites": cfg.Places.Sites,
		"sweeping_routes": cfg.Places.SweepingRoutes, "collection_routes": cfg.Places.CollectionRoutes} {
		if path != "" {
			layers[name] = cfg.Resolve(path)
		}
	}
	return layers
}

// consoleOIDC is the console's login through the city's identity provider,
// or nil when console.oidc is not configured.
func consoleOIDC(cfg *fleet.Config) (*console.OIDC, error) {
	o := cfg.Console.OIDC
	if !o.Enabled() {
		return nil, nil
	}
	secret, err := cfg.OIDCClientSecret()
	if err != nil {
		return nil, err
	}
	return &console.OIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, RedirectURL: o.RedirectURL,
		ProviderName: o.ProviderName, UserClaim: o.UserClaim, Scopes: o.Scopes}, nil
}
