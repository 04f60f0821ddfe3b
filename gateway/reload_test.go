package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
)

const (
	adminToken = "admin-token-0123456789abcdef"
	cityToken  = "city-token-0123456789abcdef"
)

// reloadSections are the cases of the reload tests: an administrator's
// token and a city token without admin.
func reloadSections() string {
	return fmt.Sprintf(`cases:
  units:
    - {id: city-office, name: City office}
  dispatch: {default_unit: city-office}
  tokens:
    - {name: ops, role: city, admin: true, token_hash: %q}
    - {name: office, role: city, token_hash: %q}
`, cases.HashToken(adminToken), cases.HashToken(cityToken))
}

// fleetSecrets makes n bins fleet-001.. with generated secrets and returns
// their YAML entries and secrets by id.
func fleetSecrets(t testing.TB, n int) (string, map[string]string) {
	t.Helper()
	var b strings.Builder
	secrets := map[string]string{}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("fleet-%03d", i)
		b.WriteString(secretDevice(t, id, secrets))
	}
	return b.String(), secrets
}

func secretDevice(t testing.TB, id string, secrets map[string]string) string {
	t.Helper()
	s, h, err := fleet.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	secrets[id] = s
	return fmt.Sprintf("  - {id: %s, kind: bin, category: other, contractor: greenclean, district: south, password_hash: %q}\n", id, h)
}

// rewriteConfig edits the running gateway's configuration file.
func (h *harness) rewriteConfig(edit func(string) string) {
	h.t.Helper()
	b, err := os.ReadFile(h.cfg.File)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.cfg.File, []byte(edit(string(b))), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) api(token, method, path string, body, out any) int {
	h.t.Helper()
	return testenv.CallAPI(h.t, "http://"+h.g.HTTPAddr(), token, method, path, body, out)
}

// watched is a device connection that records whether it was ever lost.
type watched struct {
	c    pahomqtt.Client
	lost atomic.Bool
	gone chan struct{}
}

// connectWatched connects as id with password pw, MQTT 3.1.1, without
// reconnecting, and records a lost connection.
func (h *harness) connectWatched(id, pw string) (*watched, error) {
	w := &watched{gone: make(chan struct{})}
	var once sync.Once
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + h.g.MQTTAddr()).SetClientID(id + "-w").
		SetUsername(id).SetPassword(pw).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second).SetKeepAlive(30 * time.Second).
		SetConnectionLostHandler(func(pahomqtt.Client, error) {
			w.lost.Store(true)
			once.Do(func() { close(w.gone) })
		})
	w.c = pahomqtt.NewClient(opts)
	tok := w.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	h.t.Cleanup(func() { w.c.Disconnect(50) })
	return w, nil
}

func (h *harness) mustWatch(id, pw string) *watched {
	h.t.Helper()
	w, err := h.connectWatched(id, pw)
	if err != nil {
		h.t.Fatalf("connect %s: %v", id, err)
	}
	return w
}

// canLogIn tries one connection as id with pw and closes it.
func (h *harness) canLogIn(id, pw string) bool {
	h.t.Helper()
	c, err := h.connect(id, pw)
	if err != nil {
		return false
	}
	c.Disconnect(50)
	return true
}

// TestLiveReloadAddsDevices: a device added to the file and reloaded (what
// SIGHUP does), and one added through the admin API, log in without a
// restart, while 200 connected devices keep their connections: none of the
// 200 paho clients loses its connection, the broker's connection gauge
// counts them all along, and each still publishes afterwards.
func TestLiveReloadAddsDevices(t *testing.T) {
	fleetYAML, secrets := fleetSecrets(t, 200)
	h := newHarnessYAML(t, fleetYAML, reloadSections())
	ids := make([]string, 0, len(secrets))
	for id := range secrets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	conns := make([]*watched, len(ids))
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	sem := make(chan struct{}, 20)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			w, err := h.connectWatched(id, secrets[id])
			if err != nil {
				errs <- fmt.Errorf("%s: %w", id, err)
				return
			}
			conns[i] = w
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := h.metric("sanigate_devices_connected", nil); n != 200 {
		t.Fatalf("sanigate_devices_connected %g, want 200", n)
	}

	// Added to the file, then reloaded.
	if h.canLogIn("hup-1", "x") {
		t.Fatal("an unregistered device logged in")
	}
	more := map[string]string{}
	entry := secretDevice(t, "hup-1", more)
	h.rewriteConfig(func(s string) string { return strings.Replace(s, "devices:\n", "devices:\n"+entry, 1) })
	rep, err := h.g.Reload(context.Background())
	if err != nil || !rep.Applied || !slices.Equal(rep.Added, []string{"hup-1"}) || len(rep.Removed)+len(rep.Changed) != 0 || len(rep.NeedsRestart) != 0 {
		t.Fatalf("reload: %+v, %v; want hup-1 added and nothing else", rep, err)
	}
	hup := h.mustWatch("hup-1", more["hup-1"])

	// Added through the admin API; a city token without admin may not.
	add := map[string]any{"id": "api-1", "kind": "truck", "category": "kitchen", "capacity_kg": 8000, "contractor": "greenclean"}
	if code := h.api(cityToken, "POST", "/api/v1/devices", add, nil); code != http.StatusForbidden {
		t.Fatalf("add by a non-admin token: %d, want 403", code)
	}
	var added struct{ Secret string }
	if code := h.api(adminToken, "POST", "/api/v1/devices", add, &added); code != http.StatusCreated || added.Secret == "" {
		t.Fatalf("add through the API: %d %+v", code, added)
	}
	apiDev := h.mustWatch("api-1", added.Secret)
	publish(t, apiDev.c, topic("api-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%d,"lat":39.9,"lon":116.4,"load_kg":100}`, time.Now().UnixMilli()))

	// A reload through the API that changes nothing touches nothing.
	var rep2 ReloadReport
	if code := h.api(adminToken, "POST", "/api/v1/admin/reload", nil, &rep2); code != http.StatusOK || !rep2.Applied ||
		len(rep2.Added)+len(rep2.Removed)+len(rep2.Changed) != 0 {
		t.Fatalf("second reload through the API: %d %+v", code, rep2)
	}

	for i, w := range conns {
		if w.lost.Load() || !w.c.IsConnectionOpen() {
			t.Fatalf("%s lost its connection during the reloads", ids[i])
		}
	}
	for i, w := range conns {
		publish(t, w.c, topic(ids[i], "telemetry"), 1, fmt.Sprintf(`{"ts":%d,"fill_pct":%d}`, time.Now().UnixMilli(), i%100))
	}
	if n := h.metric("sanigate_devices_connected", nil); n != 202 {
		t.Fatalf("sanigate_devices_connected %g, want 202 (200 + hup-1 + api-1)", n)
	}
	if hup.lost.Load() || apiDev.lost.Load() {
		t.Fatal("a new device lost its connection")
	}
	if n := h.metric("sanigate_config_reloads_total", map[string]string{"result": "applied"}); n != 2 {
		t.Fatalf("sanigate_config_reloads_total{result=applied} %g, want 2", n)
	}
}

// TestReloadRefusesBrokenConfig: a file with several problems is refused
// whole, with every problem listed (by Reload and by the API's 422), and the
// running configuration stays; a change that needs a restart is reported
// and not applied.
func TestReloadRefusesBrokenConfig(t *testing.T) {
	secrets := map[string]string{}
	yaml := secretDevice(t, "keep-1", secrets)
	h := newHarnessYAML(t, yaml, reloadSections())
	keep := h.mustWatch("keep-1", secrets["keep-1"])
	good, err := os.ReadFile(h.cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	entry := secretDevice(t, "new-1", secrets)
	h.rewriteConfig(func(s string) string {
		s = strings.Replace(s, "devices:\n", "devices:\n"+entry+
			"  - {id: bad-1, kind: compost, password_hash: \"plain\"}\n"+ // two problems
			"  - {id: keep-1, kind: bin, category: other, password_hash: \"plain\"}\n", 1) // a duplicate id, and a plain password
		return s + "violations:\n  lateness: 10 minutes\n"
	})
	rep, err := h.g.Reload(context.Background())
	if !errors.Is(err, ErrReloadRefused) || rep.Applied {
		t.Fatalf("broken reload: %+v, %v; want ErrReloadRefused", rep, err)
	}
	for _, want := range []string{"devices[1].kind", "devices[1].password_hash", "devices[2].password_hash", "is already used by devices[2]", "violations.lateness"} {
		if !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("problems %q do not name %s", rep.Problems, want)
		}
	}
	var apiRep ReloadReport
	if code := h.api(adminToken, "POST", "/api/v1/admin/reload", nil, &apiRep); code != http.StatusUnprocessableEntity ||
		!slices.Equal(apiRep.Problems, rep.Problems) {
		t.Fatalf("API reload of a broken file: %d %+v, want 422 with the same problems", code, apiRep)
	}
	if code := h.api(cityToken, "POST", "/api/v1/admin/reload", nil, nil); code != http.StatusForbidden {
		t.Fatalf("reload by a non-admin token: %d, want 403", code)
	}
	// The running configuration stays: new-1 is unknown, keep-1 connected.
	if h.canLogIn("new-1", secrets["new-1"]) {
		t.Fatal("a device of the refused file logged in")
	}
	if keep.lost.Load() || !h.canLogIn("keep-1", secrets["keep-1"]) {
		t.Fatal("keep-1 lost its connection or its login after a refused reload")
	}

	// Fixed, with a listener change: applied, the listener named, not moved.
	h.rewriteConfig(func(string) string {
		return strings.Replace(strings.Replace(string(good), "devices:\n", "devices:\n"+entry, 1),
			"max_packet_bytes", "max_packet_bytes_was", 1)
	})
	h.rewriteConfig(func(s string) string {
		s = strings.Replace(s, "    - {id: city-office, name: City office}\n",
			"    - {id: city-office, name: City office}\n    - {id: east-bureau, name: East bureau}\n", 1)
		return strings.Replace(s, "mqtt:\n", "mqtt:\n  max_packet_bytes: 4096\n", 1)
	})
	rep, err = h.g.Reload(context.Background())
	if err != nil || !rep.Applied || !slices.Equal(rep.NeedsRestart, []string{"mqtt"}) || !slices.Equal(rep.Added, []string{"new-1"}) {
		t.Fatalf("reload with a listener change: %+v, %v; want new-1 added and mqtt named as needing a restart", rep, err)
	}
	if !h.canLogIn("new-1", secrets["new-1"]) || keep.lost.Load() {
		t.Fatal("after the fixed reload new-1 cannot log in, or keep-1 lost its connection")
	}
	// The units (and with them the dispatch rules) are the new ones.
	var units struct{ Units []struct{ ID string } }
	if code := h.api(cityToken, "GET", "/api/v1/units", nil, &units); code != http.StatusOK || len(units.Units) != 2 || units.Units[1].ID != "east-bureau" {
		t.Fatalf("units after the reload: %d %+v, want city-office and east-bureau", code, units)
	}
}

// TestRotatedSecretGrace: after a rotation the new secret logs in, the old
// one too until the grace period ends, and not after; the connection made
// with the old secret is kept.
func TestRotatedSecretGrace(t *testing.T) {
	secrets := map[string]string{}
	h := newHarnessYAML(t, secretDevice(t, "rot-1", secrets), reloadSections())
	old := secrets["rot-1"]
	conn := h.mustWatch("rot-1", old)
	var rot struct {
		Secret string
		Until  time.Time `json:"previous_secret_until"`
	}
	if code := h.api(adminToken, "POST", "/api/v1/devices/rot-1/rotate", map[string]string{"grace": "2s"}, &rot); code != http.StatusOK || rot.Secret == "" || rot.Until.IsZero() {
		t.Fatalf("rotate: %d %+v", code, rot)
	}
	if !h.canLogIn("rot-1", rot.Secret) {
		t.Fatal("the new secret does not log in")
	}
	if time.Now().Before(rot.Until) && !h.canLogIn("rot-1", old) {
		t.Fatal("the old secret stopped before the end of its grace period")
	}
	time.Sleep(time.Until(rot.Until) + 50*time.Millisecond)
	if h.canLogIn("rot-1", old) {
		t.Fatal("the old secret still logs in after its grace period")
	}
	if !h.canLogIn("rot-1", rot.Secret) {
		t.Fatal("the new secret stopped")
	}
	if conn.lost.Load() {
		t.Fatal("the rotation closed the device's connection")
	}
	// The file's entry for rot-1 (its old hash) no longer applies: the
	// registry manages the device now.
	rep, err := h.g.Reload(context.Background())
	if err != nil || !slices.Equal(rep.RegistryManaged, []string{"rot-1"}) || h.canLogIn("rot-1", old) {
		t.Fatalf("reload after the rotation: %+v, %v; want rot-1 managed by the registry and its old secret refused", rep, err)
	}
}

// TestDisabledDeviceDisconnected: disabling a device through the API closes
// its connection at once and it cannot log in again; removing a device from
// the file and reloading does the same; other devices keep theirs.
func TestDisabledDeviceDisconnected(t *testing.T) {
	secrets := map[string]string{}
	yaml := secretDevice(t, "dis-1", secrets) + secretDevice(t, "rm-1", secrets) + secretDevice(t, "stay-1", secrets)
	h := newHarnessYAML(t, yaml, reloadSections())
	dis, rm, stay := h.mustWatch("dis-1", secrets["dis-1"]), h.mustWatch("rm-1", secrets["rm-1"]), h.mustWatch("stay-1", secrets["stay-1"])

	if code := h.api(cityToken, "POST", "/api/v1/devices/dis-1/disable", nil, nil); code != http.StatusForbidden {
		t.Fatalf("disable by a non-admin token: %d, want 403", code)
	}
	if code := h.api(adminToken, "POST", "/api/v1/devices/dis-1/disable", nil, nil); code != http.StatusOK {
		t.Fatalf("disable: %d", code)
	}
	// The answer comes after the change is in force: the connection is
	// already being closed.
	select {
	case <-dis.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the disabled device is still connected")
	}
	if h.canLogIn("dis-1", secrets["dis-1"]) {
		t.Fatal("the disabled device logged in again")
	}

	h.rewriteConfig(func(s string) string {
		i := strings.Index(s, "  - {id: rm-1,")
		j := i + strings.Index(s[i:], "\n") + 1
		return s[:i] + s[j:]
	})
	rep, err := h.g.Reload(context.Background())
	if err != nil || !slices.Equal(rep.Removed, []string{"rm-1"}) {
		t.Fatalf("reload without rm-1: %+v, %v", rep, err)
	}
	select {
	case <-rm.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the removed device is still connected")
	}
	if h.canLogIn("rm-1", secrets["rm-1"]) {
		t.Fatal("the removed device logged in again")
	}
	// dis-1 is still in the file, but the registry disabled it: it stays out.
	if h.canLogIn("dis-1", secrets["dis-1"]) || stay.lost.Load() || !stay.c.IsConnectionOpen() {
		t.Fatal("after the reload dis-1 logs in again, or stay-1 lost its connection")
	}
	if n := h.metric("sanigate_devices_connected", nil); n != 1 {
		t.Fatalf("sanigate_devices_connected %g, want 1 (stay-1)", n)
	}
}
