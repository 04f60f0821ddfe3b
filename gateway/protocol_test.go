package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sanigate/sanigate/internal/testenv"
)

// rawConnect311 sends a 3.1.1 CONNECT with the given client id and clean
// flag and returns the connection and the bytes of the answer.
func rawConnect311(t *testing.T, addr, clientID, user, pass string, clean bool) (net.Conn, *bufio.Reader, []byte) {
	t.Helper()
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	flags := byte(0xc0)
	if clean {
		flags |= 0x02
	}
	body := append(str("MQTT"), 4, flags, 0x00, 0x3c)
	body = append(body, str(clientID)...)
	body = append(body, str(user)...)
	body = append(body, str(pass)...)
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	ack := make([]byte, 4)
	if _, err := io.ReadFull(r, ack); err != nil {
		t.Fatalf("no CONNACK: %v", err)
	}
	return conn, r, ack
}

// MQTT 3.1.1: an empty client id with clean session off gets CONNACK 0x02,
// and a client the server disconnects gets no DISCONNECT packet (3.1.1 has
// none from the server); it just sees the connection closed.
func TestMQTT311ConnackAndNoDisconnectPacket(t *testing.T) {
	h := newHarness(t)
	conn, r, ack := rawConnect311(t, h.g.MQTTAddr(), "", "bin-1", "pw-bin-1", false)
	if ack[0] != 0x20 || ack[3] != 0x02 {
		t.Errorf("empty client id, clean session off: got CONNACK % x, want 20 02 00 02", ack)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(r); len(rest) != 0 || err != nil {
		t.Errorf("after CONNACK 0x02: got % x (%v), want the connection closed", rest, err)
	}

	conn, r, ack = rawConnect311(t, h.g.MQTTAddr(), "bin-1", "bin-1", "pw-bin-1", true)
	if ack[3] != 0 {
		t.Fatalf("CONNACK % x", ack)
	}
	// QoS 1 publish on another device's topic: refused by disconnecting.
	tp := topic("bin-2", "telemetry")
	pub := append([]byte{0, byte(len(tp))}, tp...)
	pub = append(pub, 0x00, 0x01, '{', '}')
	if _, err := conn.Write(append([]byte{0x32, byte(len(pub))}, pub...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed")
	}
	if len(rest) != 0 {
		t.Errorf("3.1.1 client got % x after the refusal, want nothing (no DISCONNECT)", rest)
	}
}

// MQTT 5: the CONNACK carries the Maximum Packet Size; a publish through a
// topic alias is checked by the ACL on its real topic and stored; a QoS 1
// publish to $SYS is answered with 0x87. MQTT 3.1.1: a QoS 1 publish to
// $SYS ends the connection instead of leaving the client waiting.
func TestMQTT5AliasesSysAndMaxPacket(t *testing.T) {
	h := newHarness(t)
	conn, err := net.Dial("tcp", h.g.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	ack, err := c.Connect(context.Background(), &paho.Connect{ClientID: "bin-1", Username: "bin-1", UsernameFlag: true,
		Password: []byte("pw-bin-1"), PasswordFlag: true, KeepAlive: 30, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Properties == nil || ack.Properties.MaximumPacketSize == nil || *ack.Properties.MaximumPacketSize != uint32(h.cfg.MQTT.MaxPacketBytes) {
		t.Errorf("CONNACK Maximum Packet Size: got %+v, want %d", ack.Properties, h.cfg.MQTT.MaxPacketBytes)
	}
	alias := uint16(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, tp := range []string{topic("bin-1", "telemetry"), ""} {
		msg := fmt.Sprintf(`{"ts":%q,"fill_pct":%d}`, time.Now().Add(-time.Duration(10-i)*time.Second).UTC().Format(time.RFC3339Nano), 20+i)
		resp, err := c.Publish(ctx, &paho.Publish{Topic: tp, QoS: 1, Payload: []byte(msg), Properties: &paho.PublishProperties{TopicAlias: &alias}})
		if err != nil || resp.ReasonCode != 0 {
			t.Fatalf("publish %d through alias: %+v %v", i, resp, err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "both aliased readings", func() bool { return h.influx.Count(t, "bin", "fill_pct", "") == 2 })

	resp, err := c.Publish(ctx, &paho.Publish{Topic: "$SYS/broker/uptime", QoS: 1, Payload: []byte("1")})
	if resp == nil || resp.ReasonCode != 0x87 {
		t.Errorf("QoS 1 publish to $SYS: got %+v %v, want PUBACK 0x87", resp, err)
	}

	v3, err := h.connect311("bin-2", "bin-2", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	v3.Publish("$SYS/broker/uptime", 1, false, "1").WaitTimeout(5 * time.Second)
	testenv.Eventually(t, 10*time.Second, "the 3.1.1 $SYS publisher to be disconnected", func() bool { return !v3.IsConnectionOpen() })
}
