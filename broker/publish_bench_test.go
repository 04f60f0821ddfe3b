package broker

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/sanigate/sanigate/fleet"
)

// instant makes every message durable at once, from another goroutine as
// the spool's group commit does.
type instant struct{ done chan func(error) }

func (h instant) HandlePublish(_, _ string, _ []byte, done func(error)) error {
	if done != nil {
		h.done <- done
	}
	return nil
}

// BenchmarkPublishQoS1 sends b.N QoS 1 publishes over one connection, 16 in
// flight, through the broker's hook and acknowledgement path (storage costs
// nothing here). Run with:
//
//	go test ./broker -run '^$' -bench PublishQoS1 -benchmem
func BenchmarkPublishQoS1(b *testing.B) {
	secret, hash, _ := fleet.GenerateSecret()
	reg := fleet.NewRegistry([]fleet.Device{{ID: "bin-1", Kind: "bin", PasswordHash: hash}})
	h := instant{done: make(chan func(error), 1024)}
	go func() {
		for d := range h.done {
			d(nil)
		}
	}()
	br, err := New(Options{Address: "127.0.0.1:0", Auth: reg, Handler: h})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(); err != nil {
		b.Fatal(err)
	}
	defer br.Close(b.Context())
	conn, err := net.Dial("tcp", br.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	str := func(p []byte, s string) []byte { return append(binary.BigEndian.AppendUint16(p, uint16(len(s))), s...) }
	body := str(nil, "MQTT")
	body = append(body, 4, 0xc2, 0, 60)
	body = str(str(str(body, "bin-1-c"), "bin-1"), secret)
	if _, err := conn.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var ack [4]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil || ack[3] != 0 {
		b.Fatalf("connack % x: %v", ack, err)
	}
	payload := []byte(`{"ts":1795825200000,"fill_pct":50,"weight_kg":12.5}`)
	topic := TopicPrefix + "bin-1/telemetry"
	pkt := func(id uint16) []byte {
		p := []byte{0x32, byte(2 + len(topic) + 2 + len(payload))}
		p = str(p, topic)
		p = binary.BigEndian.AppendUint16(p, id)
		return append(p, payload...)
	}
	const window = 16
	acked := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(r, ack[:]); err != nil {
				acked <- err
				return
			}
		}
		acked <- nil
	}()
	w := bufio.NewWriter(conn)
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(pkt(uint16(i%65535 + 1))); err != nil {
			b.Fatal(err)
		}
		if i%window == window-1 {
			w.Flush()
		}
	}
	w.Flush()
	if err := <-acked; err != nil {
		b.Fatal(err)
	}
}
