package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sanigate/sanigate/internal/testenv"
)

// QoS 2 works end to end: PUBREC once the message is durable, then
// PUBREL/PUBCOMP; a resent PUBLISH awaiting its PUBREL is not stored twice.
func TestQoS2EndToEnd(t *testing.T) {
	h := newHarness(t)
	ts := func(s int) string {
		return time.Now().Add(-time.Duration(100-s) * time.Second).UTC().Format(time.RFC3339Nano)
	}

	// MQTT 3.1.1 with paho's own QoS 2 flow.
	c := h.mustConnect("bin-1")
	publish(t, c, topic("bin-1", "telemetry"), 2, fmt.Sprintf(`{"ts":%q,"fill_pct":1}`, ts(1)))

	// MQTT 5.
	conn, err := net.Dial("tcp", h.g.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	c5 := paho.NewClient(paho.ClientConfig{Conn: conn})
	t.Cleanup(func() { _ = c5.Disconnect(&paho.Disconnect{}) })
	if _, err := c5.Connect(context.Background(), &paho.Connect{ClientID: "bin-2", Username: "bin-2", UsernameFlag: true,
		Password: []byte("pw-bin-2"), PasswordFlag: true, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c5.Publish(ctx, &paho.Publish{Topic: topic("bin-2", "telemetry"), QoS: 2, Payload: []byte(fmt.Sprintf(`{"ts":%q,"fill_pct":2}`, ts(2)))})
	if err != nil || resp.ReasonCode != 0 {
		t.Fatalf("MQTT 5 QoS 2 publish: %+v %v", resp, err)
	}
	resp, err = c5.Publish(ctx, &paho.Publish{Topic: topic("bin-2", "telemetry"), QoS: 2, Payload: []byte(`{"ts":"x"}`)})
	if err == nil && resp.ReasonCode != 0x99 {
		t.Errorf("MQTT 5 QoS 2 bad payload: got %+v, want PUBREC 0x99", resp)
	}

	// Raw 3.1.1: the same PUBLISH twice (the second marked DUP) before PUBREL.
	raw, r, ack := rawConnect311(t, h.g.MQTTAddr(), "toilet-1", "toilet-1", "pw-toilet-1", true)
	if ack[3] != 0 {
		t.Fatalf("CONNACK % x", ack)
	}
	tp := topic("toilet-1", "telemetry")
	body := append([]byte{0, byte(len(tp))}, tp...)
	body = append(body, 0x00, 0x07)
	body = append(body, fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.5}`, ts(3))...)
	want := []byte{0x50, 0x02, 0x00, 0x07} // PUBREC id 7
	for _, first := range []byte{0x34, 0x3c} {
		if _, err := raw.Write(append([]byte{first, byte(len(body))}, body...)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(r, got); err != nil || string(got) != string(want) {
			t.Fatalf("after PUBLISH %#x: got % x (%v), want PUBREC % x", first, got, err, want)
		}
	}
	if _, err := raw.Write([]byte{0x62, 0x02, 0x00, 0x07}); err != nil { // PUBREL
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != string([]byte{0x70, 0x02, 0x00, 0x07}) {
		t.Fatalf("after PUBREL: got % x (%v), want PUBCOMP 70 02 00 07", got, err)
	}

	testenv.Eventually(t, 10*time.Second, "the QoS 2 readings", func() bool {
		return h.influx.Count(t, "bin", "fill_pct", "") == 2 && h.influx.Count(t, "toilet", "nh3_mgm3", "") == 1
	})
	// The resent PUBLISH was answered without being stored again (a second
	// copy would overwrite the first in InfluxDB, so count what was accepted).
	if n := h.metric("sanigate_messages_accepted_total", map[string]string{"kind": "toilet"}); n != 1 {
		t.Errorf("toilet messages accepted: got %v, want 1 (the resent PUBLISH stored once)", n)
	}
}
