package gateway

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	pahomqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sanigate/sanigate/internal/testenv"
)

// MQTT over WebSocket on the HTTPS server at /mqtt logs in and applies the
// ACL like the TCP listener.
func TestMQTTOverWebSocket(t *testing.T) {
	p := newPKI(t)
	h := newHarness(t, p.withTLS)
	connect := func(id, pw string) (pahomqtt.Client, error) {
		opts := pahomqtt.NewClientOptions().AddBroker("wss://" + h.g.HTTPSAddr() + "/mqtt").
			SetTLSConfig(&tls.Config{RootCAs: p.roots(t), ServerName: "localhost"}).
			SetClientID(id + "-ws").SetUsername(id).SetPassword(pw).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second)
		c := pahomqtt.NewClient(opts)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return nil, fmt.Errorf("connect timed out")
		}
		if err := tok.Error(); err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c, nil
	}
	if _, err := connect("bin-1", "wrong"); err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authorized") {
		t.Errorf("wrong password over wss: got %v, want refused", err)
	}
	c, err := connect("bin-1", "pw-bin-1")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	if tok := c.Subscribe(topic("bin-1", "cmd"), 1, func(_ pahomqtt.Client, m pahomqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	publish(t, c, topic("bin-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"fill_pct":33}`, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)))
	testenv.Eventually(t, 10*time.Second, "the reading sent over wss", func() bool { return h.influx.Count(t, "bin", "fill_pct", "") == 1 })
	if err := h.g.Broker().Publish(topic("bin-1", "cmd"), []byte("go"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "go" {
			t.Errorf("command over wss: got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no command over wss")
	}
	// Another device's subscription is refused, its topic unpublishable.
	st := c.Subscribe(topic("bin-2", "cmd"), 1, nil)
	st.WaitTimeout(5 * time.Second)
	if code := st.(*pahomqtt.SubscribeToken).Result()[topic("bin-2", "cmd")]; code != 0x80 {
		t.Errorf("subscription to bin-2 over wss: got %#x, want 0x80", code)
	}
	c.Publish(topic("bin-2", "telemetry"), 1, false, `{}`).WaitTimeout(3 * time.Second)
	testenv.Eventually(t, 5*time.Second, "the impostor disconnected", func() bool { return !c.IsConnectionOpen() })
	// Not on plain HTTP.
	plain := pahomqtt.NewClient(pahomqtt.NewClientOptions().AddBroker("ws://" + h.g.HTTPAddr() + "/mqtt").
		SetClientID("bin-2-ws").SetUsername("bin-2").SetPassword("pw-bin-2").SetConnectTimeout(3 * time.Second).SetAutoReconnect(false))
	if tok := plain.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		plain.Disconnect(0)
		t.Error("MQTT over plain ws:// was accepted")
	}
}
