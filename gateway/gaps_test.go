package gateway

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators"
)

// A truck's tracker silent for 40 minutes mid-trip, back parked with 1,500 kg
// less, uploaded through the gateway: tracking_gap and unaccounted_load are
// stored, and no illegal_dumping at the place it came back to. When the
// truck then drops off the network, device_offline carries the district of
// its last position, not the one it is registered in.
func TestTrackingGapThroughTheGateway(t *testing.T) {
	sections := demoPlaces(t)
	h := newHarnessYAML(t, "", sections)
	c := h.mustConnect("truck-1")
	start := time.Now().Add(-75 * time.Minute).Truncate(time.Second)
	publish(t, c, topic("truck-1", "telemetry"), 1, gapTrip(start))
	c.Disconnect(100)

	var gap, unacc []map[string]any
	testenv.Eventually(t, 20*time.Second, "tracking_gap and unaccounted_load stored", func() bool {
		gap = h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='tracking_gap'`)
		unacc = h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='unaccounted_load'`)
		return len(gap) == 1 && len(unacc) == 1
	})
	if got := gap[0]["severity"]; got != "major" {
		t.Errorf("tracking_gap severity %v, want major", got)
	}
	if got := unacc[0]["severity"]; got != "major" {
		t.Errorf("unaccounted_load severity %v, want major", got)
	}
	if s, _ := unacc[0]["summary"].(string); !strings.Contains(s, "kg less") {
		t.Errorf("unaccounted_load summary %q", s)
	}
	if rows := h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='illegal_dumping'`); len(rows) != 0 {
		t.Errorf("illegal_dumping raised across the gap: %v", rows)
	}

	dropConnection(t, h.g.MQTTAddr(), "truck-1", "pw-truck-1")
	var off []map[string]any
	testenv.Eventually(t, 20*time.Second, "device_offline stored", func() bool {
		off = h.influx.Rows(t, `SELECT * FROM "forever"."violation" WHERE "type"='device_offline'`)
		return len(off) >= 1
	})
	if got := off[0]["district"]; got != "central" {
		t.Errorf("device_offline district %v, want central (registered in north, last seen in central)", got)
	}
}

// gapTrip is a truck's upload of a trip from start: 10 minutes driving east
// along lat 39.91 from lon 116.40 with 6,000 kg, 40 minutes of silence, then
// 10 minutes parked 3 km further east with 4,500 kg.
func gapTrip(start time.Time) string {
	var items []map[string]any
	add := func(at time.Duration, lon, speed, load float64, i int) {
		items = append(items, map[string]any{"ts": start.Add(at).UnixMilli(), "lat": 39.91, "lon": lon,
			"speed_kmh": speed, "hdop": 0.8, "ignition": true, "tipper": false, "load_kg": load + float64(i%3*10)})
	}
	for i := 0; i < 60; i++ {
		add(time.Duration(i)*10*time.Second, 116.40+float64(i)*0.00007, 30, 6000, i)
	}
	for i := 0; i < 60; i++ {
		add(50*time.Minute+time.Duration(i)*10*time.Second, 116.435, 0, 4500, i)
	}
	b, _ := json.Marshal(items)
	return string(b)
}

// dropConnection connects as device over a raw MQTT 3.1.1 CONNECT and closes
// the socket without a DISCONNECT: the broker takes it as the device's last
// will.
func dropConnection(t *testing.T, addr, id, pw string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(simulators.AppendConnect(nil, 4, id+"-drop", id, pw)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connack %v: %v", ack, err)
	}
}
