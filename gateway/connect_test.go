package gateway

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahomqtt "github.com/eclipse/paho.mqtt.golang"
)

// connect311 opens an MQTT 3.1.1 connection with the given client options.
func (h *harness) connect311(id, clientID string, clean bool, mutate func(*pahomqtt.ClientOptions)) (pahomqtt.Client, error) {
	opts := pahomqtt.NewClientOptions().AddBroker("tcp://" + h.g.MQTTAddr()).
		SetClientID(clientID).SetUsername(id).SetPassword("pw-" + id).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(clean).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(5 * time.Second)
	if mutate != nil {
		mutate(opts)
	}
	c := pahomqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	h.t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// A will is published by the broker on the client's behalf without asking
// the ACL, so a will on any topic but the device's own status topic is
// refused at CONNECT: nobody can plant a (retained) command for another
// device, a crew terminal, $SYS or a wildcard.
func TestWillOutsideOwnStatusRefused(t *testing.T) {
	h := newHarness(t)
	got := make(chan string, 16)
	victim, err := h.connect311("bin-2", "bin-2", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok := victim.Subscribe(topic("bin-2", "cmd"), 1, func(_ pahomqtt.Client, m pahomqtt.Message) {
		got <- string(m.Payload())
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for _, will := range []string{
		topic("bin-2", "cmd"), topic("term-green", "cmd"), "$SYS/broker/clients", "sanigate/#",
		topic("bin-1", "telemetry"), topic("bin-1", "cmd"),
	} {
		c, err := h.connect311("bin-1", "bin-1", true, func(o *pahomqtt.ClientOptions) {
			o.SetWill(will, "forged", 1, true)
		})
		if err == nil {
			// Drop the TCP connection so that the will would fire.
			c.Disconnect(0)
			t.Errorf("will on %s: connected, want refused", will)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), "not authorized") && !strings.Contains(will, "#") {
			t.Errorf("will on %s: got %v, want not authorized", will, err)
		}
	}
	// MQTT 5 gets reason code 0x87.
	conn, err := net.Dial("tcp", h.g.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	c5 := paho.NewClient(paho.ClientConfig{Conn: conn})
	ack, err := c5.Connect(context.Background(), &paho.Connect{ClientID: "bin-1-v5", Username: "bin-1", UsernameFlag: true,
		Password: []byte("pw-bin-1"), PasswordFlag: true, KeepAlive: 30, CleanStart: true,
		WillMessage: &paho.WillMessage{Topic: topic("bin-2", "cmd"), Payload: []byte("forged"), QoS: 1, Retain: true}})
	if ack == nil || ack.ReasonCode != 0x87 {
		t.Errorf("MQTT 5 will on another device's topic: got %+v (%v), want CONNACK 0x87", ack, err)
	}
	_ = conn.Close()

	// A will on the device's own status topic is fine.
	if _, err := h.connect311("bin-1", "bin-1-ok", true, func(o *pahomqtt.ClientOptions) {
		o.SetWill(topic("bin-1", "status"), "offline", 1, true)
	}); err != nil {
		t.Fatalf("will on own status: %v", err)
	}
	// Nothing forged reached bin-2: the first message it gets is the gateway's.
	if err := h.g.Broker().Publish(topic("bin-2", "cmd"), []byte("genuine"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "genuine" {
			t.Errorf("bin-2 received %q first, want the gateway's command", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bin-2 received no command")
	}
	if n := h.metric("sanigate_mqtt_auth_failures_total", map[string]string{"reason": "will_topic"}); n < 5 {
		t.Errorf("will refusals counted: got %v, want >= 5", n)
	}
}

// A device cannot take over another device's session by using its client
// id: the CONNECT is refused with "identifier rejected", the victim stays
// connected and keeps its commands.
func TestSessionTakeoverRefused(t *testing.T) {
	h := newHarness(t)
	got := make(chan string, 4)
	victim, err := h.connect311("bin-2", "bin-2", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok := victim.Subscribe(topic("bin-2", "cmd"), 1, func(_ pahomqtt.Client, m pahomqtt.Message) {
		got <- string(m.Payload())
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	for _, id := range []string{"bin-2", "bin-2-x", "bin-22", "x-bin-1"} {
		_, err := h.connect311("bin-1", id, false, nil)
		if err == nil {
			t.Errorf("bin-1 with client id %q: connected, want refused", id)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), "identifier rejected") {
			t.Errorf("bin-1 with client id %q: got %v, want identifier rejected", id, err)
		}
	}
	if !victim.IsConnectionOpen() || !h.g.Broker().Online("bin-2") {
		t.Fatal("the victim was disconnected")
	}
	if err := h.g.Broker().Publish(topic("bin-2", "cmd"), []byte("for bin-2"), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "for bin-2" {
			t.Errorf("victim got %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the victim did not get its command")
	}
	// The device's own id and "{id}-..." work.
	for _, id := range []string{"bin-1", "bin-1-terminal"} {
		if _, err := h.connect311("bin-1", id, true, nil); err != nil {
			t.Errorf("bin-1 with client id %q: %v", id, err)
		}
	}
}
