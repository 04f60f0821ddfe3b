package gateway

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// A session holds at most mqtt.max_subscriptions filters of at most
// mqtt.max_filter_bytes each, and outlives its connection by at most
// mqtt.max_session_expiry.
func TestSubscriptionAndSessionCaps(t *testing.T) {
	h := newHarness(t)
	c, err := h.connect311("bin-1", "bin-1", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	granted, refused := 0, 0
	subscribe := func(filter string) byte {
		tok := c.Subscribe(filter, 1, func(pahomqtt.Client, pahomqtt.Message) {})
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatal("no SUBACK")
		}
		return tok.(*pahomqtt.SubscribeToken).Result()[filter]
	}
	for i := range 40 {
		if subscribe(fmt.Sprintf("%sbin-1/cmd/%d", "sanigate/v1/devices/", i)) == 0x80 {
			refused++
		} else {
			granted++
		}
	}
	if granted != h.cfg.MQTT.MaxSubscriptions || refused != 40-granted {
		t.Errorf("40 subscriptions: %d granted, %d refused; want %d granted", granted, refused, h.cfg.MQTT.MaxSubscriptions)
	}
	// Subscribing again to a held filter is no new subscription.
	if code := subscribe("sanigate/v1/devices/bin-1/cmd/0"); code == 0x80 {
		t.Error("re-subscribing to a held filter was refused")
	}

	c2, err := h.connect311("bin-2", "bin-2", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := "sanigate/v1/devices/bin-2/" + strings.Repeat("x", 60<<10)
	tok := c2.Subscribe(long, 1, nil)
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("no SUBACK for a long filter")
	}
	if code := tok.(*pahomqtt.SubscribeToken).Result()[long]; code != 0x80 {
		t.Errorf("60 kB filter: got SUBACK %#x, want 0x80", code)
	}
	if n := h.metric("sanigate_mqtt_packets_rejected_total", map[string]string{"reason": "filter_too_long"}); n != 1 {
		t.Errorf("filter_too_long: got %v, want 1", n)
	}

	// An MQTT 5 client asking for a day of session expiry is told the cap.
	conn, err := net.Dial("tcp", h.g.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	c5 := paho.NewClient(paho.ClientConfig{Conn: conn})
	t.Cleanup(func() { _ = c5.Disconnect(&paho.Disconnect{}) })
	day := uint32(86400)
	ack, err := c5.Connect(context.Background(), &paho.Connect{ClientID: "bin-1-v5", Username: "bin-1", UsernameFlag: true,
		Password: []byte("pw-bin-1"), PasswordFlag: true, KeepAlive: 30, CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &day}})
	if err != nil {
		t.Fatal(err)
	}
	want := uint32(h.cfg.MQTT.MaxSessionExpiry.D() / time.Second)
	if ack.Properties == nil || ack.Properties.SessionExpiryInterval == nil || *ack.Properties.SessionExpiryInterval != want {
		t.Errorf("CONNACK session expiry: got %+v, want %d", ack.Properties, want)
	}
}

// A device holds at most mqtt.max_sessions_per_device sessions, counting
// those kept for a reconnect; its existing sessions stay usable.
func TestSessionsPerDeviceCapped(t *testing.T) {
	h := newHarness(t)
	max := h.cfg.MQTT.MaxSessionsPerDevice
	for i := range max {
		c, err := h.connect311("bin-1", fmt.Sprintf("bin-1-s%d", i), false, nil)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		c.Disconnect(50) // the session stays for a reconnect
	}
	if _, err := h.connect311("bin-1", "bin-1-one-more", false, nil); err == nil || !strings.Contains(strings.ToLower(err.Error()), "server unavailable") {
		t.Errorf("session %d: got %v, want refused (server unavailable)", max+1, err)
	}
	if _, err := h.connect311("bin-1", "bin-1-s0", false, nil); err != nil {
		t.Errorf("an existing session: %v", err)
	}
	if _, err := h.connect311("bin-2", "bin-2-s0", false, nil); err != nil {
		t.Errorf("another device: %v", err)
	}
}
