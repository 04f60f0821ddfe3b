package broker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// held keeps each publish's completion until the test releases them.
type held struct {
	mu   sync.Mutex
	done []func(error)
	got  chan struct{}
}

func (h *held) HandlePublish(_, _ string, _ []byte, done func(error)) error {
	h.mu.Lock()
	h.done = append(h.done, done)
	h.mu.Unlock()
	h.got <- struct{}{}
	return nil
}

// Publishes made durable in reverse order are still acknowledged in the
// order they arrived, and a publish whose storage failed holds back no
// later acknowledgement of an MQTT 3.1.1 client (it simply gets none).
func TestAcknowledgementsInArrivalOrder(t *testing.T) {
	secret, hash, _ := fleet.GenerateSecret()
	h := &held{got: make(chan struct{}, 64)}
	b, err := New(Options{Address: "127.0.0.1:0", Auth: fleet.NewRegistry([]fleet.Device{{ID: "bin-1", Kind: "bin", PasswordHash: hash}}), Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close(t.Context())
	conn, err := rawConnect(b.Addr(), "bin-1", secret)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	topic := TopicPrefix + "bin-1/telemetry"
	const n = 10
	for id := uint16(1); id <= n; id++ {
		p := []byte{0x32, byte(2 + len(topic) + 2 + 2)}
		p = append(binary.BigEndian.AppendUint16(p, uint16(len(topic))), topic...)
		p = append(binary.BigEndian.AppendUint16(p, id), "{}"...)
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case <-h.got:
		case <-time.After(10 * time.Second):
			t.Fatal("publishes did not reach the handler")
		}
	}
	h.mu.Lock()
	for i := n - 1; i >= 0; i-- {
		var err error
		if i == 4 {
			err = errors.New("disk on fire") // publish 5: no PUBACK for 3.1.1
		}
		h.done[i](err)
	}
	h.mu.Unlock()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for _, want := range []uint16{1, 2, 3, 4, 6, 7, 8, 9, 10} {
		var ack [4]byte
		if _, err := io.ReadFull(r, ack[:]); err != nil {
			t.Fatalf("waiting for PUBACK %d: %v", want, err)
		}
		if ack[0] != 0x40 || ack[1] != 2 || binary.BigEndian.Uint16(ack[2:]) != want {
			t.Fatalf("got % x, want the PUBACK of %d", ack, want)
		}
	}
}
