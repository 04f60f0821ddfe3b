package gateway

import (
	"fmt"
	"os"

	"github.com/sanigate/sanigate/console"
)

// consoleHandler builds the dispatcher console on the case service, with
// the city's map as its base layers. SANIGATE_CONSOLE_TILES names an
// optional tile server; SANIGATE_CONSOLE_SECURE_COOKIES=1 marks cookies
// Secure behind a proxy that terminates TLS.
func (g *Gateway) consoleHandler() (*console.Console, error) {
	cfg := g.cfg
	layers := map[string]string{}
	for name, path := range map[string]string{"districts": cfg.Places.Districts, "sites": cfg.Places.Sites,
		"sweeping_routes": cfg.Places.SweepingRoutes, "collection_routes": cfg.Places.CollectionRoutes} {
		if path != "" {
			layers[name] = cfg.Resolve(path)
		}
	}
	token, err := cfg.InfluxToken()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c, err := console.New(console.Options{
		History: newInfluxHistory(cfg.InfluxDB.URL, cfg.InfluxDB.Bucket, token),
		Cases:   g.cases, Layers: layers, TileURL: os.Getenv("SANIGATE_CONSOLE_TILES"),
		PhotoDir: cfg.Resolve(cfg.Spool.Dir) + "-photos", SecureCookies: os.Getenv("SANIGATE_CONSOLE_SECURE_COOKIES") == "1",
		Calendar: cfg.WorkCalendar, Location: cfg.Location(), Logger: g.log.With("component", "console"),
	})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return c, nil
}
