package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/pgtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRegistrySharedThroughPostgres: two gateways share the device registry
// in one PostgreSQL store. A device added through the first gateway's API
// logs in on the second, and a device disabled through the first loses its
// connection to the second, within the second's registry poll.
func TestRegistrySharedThroughPostgres(t *testing.T) {
	dsn := pgtest.DB(t)
	secrets := map[string]string{}
	sections := strings.Replace(reloadSections(), "cases:\n", fmt.Sprintf("cases:\n  store: {driver: postgres, dsn: %q, registry_poll: 200ms}\n", dsn), 1)
	influxA := influxtest.Start(t, testDB)
	cfgA := testConfigExtra(t, influxA.URL, testDevices(t), secretDevice(t, "shared-1", secrets), sections)
	a := &harness{t: t, influx: influxA, cfg: cfgA, logs: &strings.Builder{}}
	a.start()
	// The second gateway reads the same file (the same seed), with its own
	// spool and InfluxDB.
	influxB := influxtest.Start(t, testDB)
	cfgB, err := fleet.Load(cfgA.File)
	if err != nil {
		t.Fatal(err)
	}
	cfgB.Spool.Dir, cfgB.InfluxDB.URL = t.TempDir(), influxB.URL
	b := &harness{t: t, influx: influxB, cfg: cfgB, logs: &strings.Builder{}}
	b.start()
	onB := b.mustWatch("shared-1", secrets["shared-1"])

	var added struct{ Secret string }
	add := map[string]any{"id": "api-2", "kind": "bin", "category": "other", "lat": 39.9, "lon": 116.4}
	if code := a.api(adminToken, "POST", "/api/v1/devices", add, &added); code != http.StatusCreated {
		t.Fatalf("add through the first gateway: %d", code)
	}
	start := time.Now()
	testenv.Eventually(t, 10*time.Second, "the second gateway to know api-2", func() bool {
		_, ok := b.g.registry.Device("api-2")
		return ok
	})
	t.Logf("an added device reached the second gateway after %s (poll %s)", time.Since(start).Round(time.Millisecond), b.g.registryPoll())
	if !b.canLogIn("api-2", added.Secret) {
		t.Fatal("api-2 cannot log in on the second gateway")
	}

	if code := a.api(adminToken, "POST", "/api/v1/devices/shared-1/disable", nil, nil); code != http.StatusOK {
		t.Fatalf("disable through the first gateway: %d", code)
	}
	start = time.Now()
	select {
	case <-onB.gone:
		t.Logf("a disabled device lost its connection to the second gateway after %s", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the device disabled on the first gateway is still connected to the second")
	}
	if b.canLogIn("shared-1", secrets["shared-1"]) {
		t.Fatal("the disabled device logged in on the second gateway")
	}
}
