package console

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetLayers: new layer files are served from the next request on; a
// set that cannot be read is refused and the layers in force stay.
func TestSetLayers(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.client(t)
	c.login("dispatcher")
	dir := t.TempDir()
	path := filepath.Join(dir, "districts.geojson")
	if err := os.WriteFile(path, []byte(`{"type":"FeatureCollection","features":[],"name":"harbour"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.con.SetLayers(map[string]string{"districts": path}); err != nil {
		t.Fatal(err)
	}
	code, body := c.get("/map/layers.json")
	if code != 200 || body != `{"districts":{"type":"FeatureCollection","features":[],"name":"harbour"}}` {
		t.Fatalf("after SetLayers: %d %s", code, body)
	}
	err := e.con.SetLayers(map[string]string{"districts": path, "sites": filepath.Join(dir, "missing.geojson")})
	if err == nil || !strings.Contains(err.Error(), "sites") {
		t.Fatalf("a missing file: %v, want an error naming the layer", err)
	}
	if _, after := c.get("/map/layers.json"); after != body {
		t.Fatalf("a refused set changed the layers: %s", after)
	}
}
