package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/internal/testenv"
)

// TestSIGHUPReloads runs the built gateway, adds a device to its file and
// sends SIGHUP: the new device logs in, a connected one keeps its
// connection, and the address given by flag (not the file's) is not
// reported as a change that needs a restart. A broken file sent with SIGHUP
// is refused with every problem logged, and the gateway runs on.
func TestSIGHUPReloads(t *testing.T) {
	influx := influxtest.Start(t, "sanigate_hup")
	dir := t.TempDir()
	bin := buildGateway(t, dir)
	secret := func() (string, string) {
		s, h, err := fleet.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		return s, h
	}
	s1, h1 := secret()
	s2, h2 := secret()
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := fmt.Sprintf(`mqtt: {address: "127.0.0.1:1"}
http: {address: %q}
influxdb: {url: %q, bucket: sanigate_hup, flush_interval: 100ms}
devices:
  - {id: bin-1, kind: bin, category: kitchen, password_hash: %q}
`, httpAddr, influx.URL, h1)
	path := filepath.Join(dir, "sanigate.yaml")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd := exec.Command(bin, "-config", path, "-mqtt-address", mqttAddr)
	cmd.Stderr, cmd.Stdout = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gateway log:\n%s", tail(logs.String(), 6000))
		}
	})
	login := func(id, pw string) (pahomqtt.Client, bool) {
		c := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID(id + "-hup").
			SetUsername(id).SetPassword(pw).SetAutoReconnect(false).SetConnectRetry(false).
			SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		return c, tok.WaitTimeout(10*time.Second) && tok.Error() == nil
	}
	var c1 pahomqtt.Client
	testenv.Eventually(t, 30*time.Second, "bin-1 to log in", func() bool {
		c, ok := login("bin-1", s1)
		c1 = c
		return ok
	})
	// Without auto-reconnect, a connection paho lost stays closed.
	defer c1.Disconnect(50)

	if _, ok := login("bin-2", s2); ok {
		t.Fatal("bin-2 logged in before it was registered")
	}
	more := base + fmt.Sprintf("  - {id: bin-2, kind: bin, category: other, password_hash: %q}\n", h2)
	if err := os.WriteFile(path, []byte(more), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the reload to be logged", func() bool {
		return strings.Contains(logs.String(), "configuration reloaded")
	})
	c2, ok := login("bin-2", s2)
	if !ok {
		t.Fatal("bin-2 cannot log in after SIGHUP")
	}
	c2.Disconnect(50)
	if !c1.IsConnectionOpen() {
		t.Fatal("bin-1 lost its connection to the reload")
	}
	line := grepLines(logs.String(), "configuration reloaded")
	if !strings.Contains(line, "added=1") || !strings.Contains(line, "needs_restart=[]") {
		t.Fatalf("reload log %q: want one device added and nothing needing a restart (the flag's address stays)", line)
	}

	broken := more + "  - {id: bin-3, kind: compost, password_hash: plain}\nviolations:\n  lateness: soon\n"
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the refusal to be logged", func() bool {
		return strings.Contains(logs.String(), "configuration reload refused")
	})
	testenv.Eventually(t, 10*time.Second, "every problem to be logged", func() bool {
		problems := grepLines(logs.String(), "configuration problem")
		return strings.Contains(problems, "devices[2].kind") && strings.Contains(problems, "devices[2].password_hash") &&
			strings.Contains(problems, "violations.lateness")
	})
	if _, ok := login("bin-2", s2); !ok || !c1.IsConnectionOpen() {
		t.Fatal("after a refused reload bin-2 cannot log in or bin-1 lost its connection")
	}
}
