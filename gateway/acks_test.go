package gateway

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sanigate/sanigate/simulators"
)

// PUBACKs leave in the order the publishes arrived ([MQTT-4.6.0-2]), also when
// a refused message sits between stored ones, and carry the verdict: MQTT 5
// gets 0x99 for the refused payload, 3.1.1 a plain PUBACK (resending cannot help).
func TestAcknowledgementsInOrder(t *testing.T) {
	h := newHarness(t)
	for _, version := range []byte{4, 5} {
		t.Run(fmt.Sprintf("protocol %d", version), func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", h.g.MQTTAddr(), 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(conn)
			if _, err := conn.Write(mqttConnect(version, "bin-2", "pw-bin-2")); err != nil {
				t.Fatal(err)
			}
			ack, err := simulators.ReadPacket(r)
			if err != nil || ack[0] != 0x20 {
				t.Fatalf("connack: %x %v", ack, err)
			}
			ts := time.Now().Add(-time.Minute).UnixMilli()
			payloads := []string{
				fmt.Sprintf(`{"ts":%d,"fill_pct":10}`, ts),
				`{"ts":"yesterday","fill_pct":11}`,
				fmt.Sprintf(`{"ts":%d,"fill_pct":12}`, ts+1),
				fmt.Sprintf(`{"ts":%d,"fill_pct":130}`, ts+2),
				fmt.Sprintf(`{"ts":%d,"fill_pct":14}`, ts+3),
			}
			var out []byte
			for i, p := range payloads {
				out = append(out, publishPacket(version, topic("bin-2", "telemetry"), uint16(i+1), p)...)
			}
			if _, err := conn.Write(out); err != nil { // all at once: they are in flight together
				t.Fatal(err)
			}
			for i := range payloads {
				pk, err := simulators.ReadPacket(r)
				if err != nil {
					t.Fatalf("puback %d: %v", i+1, err)
				}
				if pk[0] != 0x40 {
					t.Fatalf("packet %x, want a PUBACK", pk)
				}
				id := binary.BigEndian.Uint16(pk[2:4])
				code := byte(0)
				if len(pk) > 4 {
					code = pk[4]
				}
				want := byte(0)
				if version == 5 && (i == 1 || i == 3) {
					want = 0x99
				}
				if id != uint16(i+1) || code != want {
					t.Errorf("PUBACK %d: got id %d code %#x, want id %d code %#x", i+1, id, code, i+1, want)
				}
			}
		})
	}
}

func publishPacket(version byte, topic string, id uint16, payload string) []byte {
	return simulators.AppendPublish(nil, version, 1, topic, id, []byte(payload))
}
