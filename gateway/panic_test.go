package gateway

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
)

// A connection whose goroutine panicked (mochi-mqtt issue 501: a truncated
// MQTT 5 SUBSCRIBE) is cleaned up in full: the device goes offline, its
// per-connection state and goroutines are gone, and the ERROR line is
// logged at a bounded rate however many packets do it.
func TestPanickedConnectionCleanedUp(t *testing.T) {
	h := newHarness(t)
	addr := h.g.MQTTAddr()
	truncSub := []byte{0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x03, 'a', '/', 'b'}
	panicOnce := func() {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		if _, err := conn.Write(mqttConnect(5, "bin-1", "pw-bin-1")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := r.ReadByte(); err != nil || b != 0x20 {
			t.Fatalf("no CONNACK: %v %#x", err, b)
		}
		testenv.Eventually(t, 5*time.Second, "bin-1 online", func() bool { return h.g.Broker().Online("bin-1") })
		if _, err := conn.Write(truncSub); err != nil {
			t.Fatal(err)
		}
		// The gateway closes the connection.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := r.ReadByte(); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("connection not closed after the panic")
				}
				return
			}
		}
	}
	panicOnce()
	testenv.Eventually(t, 5*time.Second, "bin-1 offline after the panic", func() bool {
		return !h.g.Broker().Online("bin-1") && h.g.Broker().ConnectedDevices() == 0
	})
	runtime.GC()
	base := runtime.NumGoroutine()
	const rounds = 100
	for range rounds {
		panicOnce()
	}
	testenv.Eventually(t, 10*time.Second, "every panicked connection cleaned up", func() bool {
		return h.g.Broker().ConnectedDevices() == 0 && runtime.NumGoroutine() <= base+10
	})
	if got := h.metric("sanigate_devices_connected", nil); got != 0 {
		t.Errorf("sanigate_devices_connected: got %v, want 0", got)
	}
	if got := h.metric("sanigate_mqtt_panics_recovered_total", map[string]string{"where": "connection"}); got != rounds+1 {
		t.Errorf("panics recovered: got %v, want %d", got, rounds+1)
	}
	if n := strings.Count(h.logs.String(), "recovered panic in an mqtt connection"); n < 1 || n > 3 {
		t.Errorf("panic log lines: got %d for %d panics, want 1 to 3", n, rounds+1)
	}
	// The device connects again and works.
	c := h.mustConnect("bin-1")
	publish(t, c, topic("bin-1", "telemetry"), 1, `{"ts":"`+time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)+`","fill_pct":7}`)
}
