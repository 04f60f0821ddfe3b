package gateway

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators"
)

func TestWrongPasswordRefusedAtConnect(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ name, id, pw string }{
		{"wrong password", "bin-1", "not-the-password"},
		{"unknown device", "bin-999", "pw-bin-999"},
		{"another device's password", "bin-1", "pw-bin-2"},
		{"empty password", "bin-1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := h.connect(tc.id, tc.pw)
			if err == nil {
				c.Disconnect(0)
				t.Fatal("connected, want refused")
			}
			if !strings.Contains(strings.ToLower(err.Error()), "bad user name or password") && !strings.Contains(strings.ToLower(err.Error()), "not authorized") {
				t.Errorf("got %v, want a bad-credentials refusal", err)
			}
		})
	}
	if got := h.metric("sanigate_mqtt_auth_failures_total", nil); got < 4 {
		t.Errorf("sanigate_mqtt_auth_failures_total: got %v, want >= 4", got)
	}
}

// A device may publish only under its own id: publishing as another device
// is refused (MQTT 3.1.1: disconnected) and nothing of it is stored.
func TestPublishUnderAnotherDeviceRefused(t *testing.T) {
	h := newHarness(t)
	c := h.mustConnect("bin-1")
	ts := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	tok := c.Publish(topic("bin-2", "telemetry"), 1, false, fmt.Sprintf(`{"ts":%q,"fill_pct":99}`, ts))
	tok.WaitTimeout(3 * time.Second)
	testenv.Eventually(t, 5*time.Second, "the impostor to be disconnected", func() bool { return !c.IsConnectionOpen() })

	// Subscribing to another device's topics is refused too.
	c2 := h.mustConnect("bin-2")
	st := c2.Subscribe("sanigate/v1/devices/bin-1/#", 1, nil)
	st.WaitTimeout(3 * time.Second)
	// paho reports a refused subscription as a SUBACK return code 0x80.
	if st.Error() == nil {
		if codes := st.(interface{ Result() map[string]byte }).Result(); codes["sanigate/v1/devices/bin-1/#"] != 0x80 {
			t.Errorf("subscription to another device's topics: got code %#x, want 0x80", codes["sanigate/v1/devices/bin-1/#"])
		}
	}
	// Give the writer time to deliver anything it might wrongly have taken.
	publish(t, c2, topic("bin-2", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"fill_pct":10}`, ts))
	testenv.Eventually(t, 10*time.Second, "bin-2's own reading", func() bool { return h.influx.Count(t, "bin", "fill_pct", "") == 1 })
	rows := h.influx.Rows(t, `SELECT * FROM "bin"`)
	if len(rows) != 1 || rows[0]["device"] != "bin-2" || fmt.Sprint(rows[0]["fill_pct"]) != "10" {
		t.Errorf("bin rows: got %v, want only bin-2's own fill_pct=10", rows)
	}
	if got := h.metric("sanigate_mqtt_acl_denied_total", nil); got < 2 {
		t.Errorf("sanigate_mqtt_acl_denied_total: got %v, want >= 2", got)
	}
}

// Bad messages are refused, counted by reason and not stored, while the same
// connection's good messages are.
func TestBadMessagesRefusedGoodOnesStored(t *testing.T) {
	h := newHarness(t)
	c := h.mustConnect("toilet-1")
	now := time.Now().UTC()
	ts := func(i int) string { return now.Add(time.Duration(-100+i) * time.Second).Format(time.RFC3339Nano) }
	good := 0
	sendGood := func() {
		good++
		publish(t, c, topic("toilet-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.%d}`, ts(good), good))
	}
	bad := []struct{ reason, payload string }{
		{"malformed", `{"ts": "` + ts(50) + `", "nh3_mgm3": 0.5`},
		{"malformed", `not json at all`},
		{"malformed", `{"ts":"` + ts(51) + `","nh3_mgm3":NaN}`},
		{"out_of_range", fmt.Sprintf(`{"ts":%q,"humidity_pct":140}`, ts(52))},
		{"out_of_range", fmt.Sprintf(`{"ts":%q,"stalls_occupied":-1}`, ts(53))},
		{"non_finite", fmt.Sprintf(`{"ts":%q,"nh3_mgm3":1e999}`, ts(54))},
		{"wrong_type", fmt.Sprintf(`{"ts":%q,"nh3_mgm3":"high"}`, ts(55))},
		{"unknown_field", fmt.Sprintf(`{"ts":%q,"nh3":0.1}`, ts(56))},
		{"future_timestamp", fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.1}`, now.Add(24*time.Hour).Format(time.RFC3339))},
		{"bad_timestamp", `{"nh3_mgm3":0.1}`},
		// One bad reading refuses its whole batch.
		{"out_of_range", fmt.Sprintf(`[{"ts":%q,"nh3_mgm3":0.1},{"ts":%q,"paper_pct":101}]`, ts(57), ts(58))},
	}
	sendGood()
	for _, b := range bad {
		publish(t, c, topic("toilet-1", "telemetry"), 1, b.payload)
		sendGood()
	}
	// An oversized packet: mochi disconnects the client ([MQTT-3.2.2-15]);
	// the device reconnects and its good messages are stored again.
	big := fmt.Sprintf(`{"ts":%q,"nh3_mgm3":0.1,"pad":"%s"}`, ts(60), strings.Repeat("x", 70<<10))
	c.Publish(topic("toilet-1", "telemetry"), 1, false, big).WaitTimeout(2 * time.Second)
	testenv.Eventually(t, 5*time.Second, "disconnect after an oversized packet", func() bool { return !c.IsConnectionOpen() })
	c = h.mustConnect("toilet-1")
	sendGood()

	testenv.Eventually(t, 15*time.Second, "the good readings", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", "") == int64(good)
	})
	rows := h.influx.Rows(t, `SELECT "nh3_mgm3", "humidity_pct", "paper_pct" FROM "toilet"`)
	if len(rows) != good {
		t.Fatalf("toilet rows: got %d, want %d (only the good ones)", len(rows), good)
	}
	want := map[string]int{}
	for _, b := range bad {
		want[b.reason]++
	}
	for reason, n := range want {
		if got := h.metric("sanigate_messages_rejected_total", map[string]string{"reason": reason}); got != float64(n) {
			t.Errorf("rejected{reason=%s}: got %v, want %d", reason, got, n)
		}
	}
	if got := h.metric("sanigate_mqtt_packets_rejected_total", map[string]string{"reason": "too_large"}); got != 1 {
		t.Errorf("packets rejected too_large: got %v, want 1", got)
	}
}

// A truncated MQTT 5 SUBSCRIBE (mochi-mqtt issue 501) and random garbage must
// not take the gateway down; other devices carry on.
func TestMalformedPacketsDoNotCrash(t *testing.T) {
	h := newHarness(t)
	addr := h.g.MQTTAddr()
	raw := func(t *testing.T, packets ...[]byte) {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, p := range packets {
			_, _ = conn.Write(p)
			time.Sleep(20 * time.Millisecond)
		}
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = bufio.NewReader(conn).ReadByte()
	}
	connect5 := mqttConnect(5, "bin-1", "pw-bin-1")
	connect4 := mqttConnect(4, "bin-2", "pw-bin-2")
	// SUBSCRIBE, id 1, no properties, filter "a/b", and no options byte.
	truncSub := []byte{0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x03, 'a', '/', 'b'}
	truncSub[1] = byte(len(truncSub) - 2)
	cases := map[string][][]byte{
		"truncated v5 subscribe":     {connect5, truncSub},
		"truncated v4 subscribe":     {connect4, {0x82, 0x07, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b'}},
		"garbage before connect":     {{0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01}},
		"huge remaining length":      {{0x10, 0xff, 0xff, 0xff, 0x7f}},
		"publish with bad topic len": {connect4, {0x32, 0x04, 0xff, 0xff, 0x00, 0x01}},
		"connect with bad lengths":   {{0x10, 0x0a, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xc2, 0x00, 0x3c}},
	}
	for name, pkts := range cases {
		t.Run(name, func(t *testing.T) { raw(t, pkts...) })
	}
	// mochi's decoder panics on the truncated v5 SUBSCRIBE; the panic is
	// recovered, counted and logged.
	if got := h.metric("sanigate_mqtt_panics_recovered_total", map[string]string{"where": "connection"}); got < 1 {
		t.Errorf("sanigate_mqtt_panics_recovered_total{where=connection}: got %v, want >= 1", got)
	}
	if !strings.Contains(h.logs.String(), "recovered panic") {
		t.Errorf("no log line for the recovered panic; logs:\n%s", h.logs.String())
	}
	// The gateway still works for everyone.
	c := h.mustConnect("sweeper-1")
	publish(t, c, topic("sweeper-1", "telemetry"), 1, fmt.Sprintf(`{"ts":%q,"speed_kmh":5}`, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)))
	testenv.Eventually(t, 10*time.Second, "a reading after the malformed packets", func() bool {
		return h.influx.Count(t, "sweeper", "speed_kmh", "") == 1
	})
}

// mqttConnect encodes a CONNECT packet.
func mqttConnect(version byte, user, pass string) []byte {
	return simulators.AppendConnect(nil, version, user+"-raw", user, pass)
}
