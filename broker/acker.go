package broker

import (
	"errors"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// acker sends one client's PUBACKs once the gateway has made each message
// durable. mochi would acknowledge a QoS 1 publish as soon as its hook
// returned, so the hook would have to block the client's read loop for a whole
// group commit per message; instead the hook returns at once (mochi sends
// nothing) and the acker answers later. Acknowledgements leave in the order
// the publishes arrived ([MQTT-4.6.0-2]), and those that are ready together
// leave in one write.
type acker struct {
	cl   *mqtt.Client
	v5   bool
	b    *Broker
	wake chan struct{}
	stop chan struct{}

	mu    sync.Mutex
	queue []*ackSlot
}

// ackSlot is one QoS 1 publish waiting for its verdict.
type ackSlot struct {
	id    uint16
	ready bool
	err   error
}

func newAcker(b *Broker, cl *mqtt.Client) *acker {
	a := &acker{cl: cl, v5: cl.Properties.ProtocolVersion == 5, b: b, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	go a.run()
	return a
}

// reserve takes the next place in the acknowledgement order.
func (a *acker) reserve(id uint16) *ackSlot {
	s := &ackSlot{id: id}
	a.mu.Lock()
	a.queue = append(a.queue, s)
	a.mu.Unlock()
	return s
}

// complete records a publish's verdict; it never blocks.
func (a *acker) complete(s *ackSlot, err error) {
	a.mu.Lock()
	s.ready, s.err = true, err
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *acker) close() { close(a.stop) }

func (a *acker) run() {
	buf := make([]byte, 0, 256)
	for {
		select {
		case <-a.stop:
			return
		case <-a.wake:
		}
		buf = buf[:0]
		a.mu.Lock()
		k := 0
		for ; k < len(a.queue) && a.queue[k].ready; k++ {
			buf = a.encode(buf, a.queue[k])
		}
		a.queue = a.queue[k:]
		a.mu.Unlock()
		if len(buf) == 0 {
			continue
		}
		if err := a.write(buf); err != nil {
			a.b.log.Debug("mqtt: cannot send acknowledgements; closing the connection", "device", string(a.cl.Properties.Username), "error", err)
			a.cl.Stop(err)
			return
		}
	}
}

// encode appends the PUBACK for s, or nothing when the client must not get
// one (a 3.1.1 client whose message could not be stored resends it).
func (a *acker) encode(buf []byte, s *ackSlot) []byte {
	var code byte
	switch {
	case s.err == nil:
	case errors.Is(s.err, ErrPayloadRejected):
		if !a.v5 {
			break // 3.1.1 has no negative PUBACK, and resending cannot help
		}
		code = 0x99 // payload format invalid
	case !a.v5:
		return buf // no PUBACK: the client keeps the message and resends it
	case errors.Is(s.err, ErrQuota):
		code = 0x97 // quota exceeded
	default:
		code = 0x80 // unspecified error
	}
	if code == 0 {
		return append(buf, 0x40, 0x02, byte(s.id>>8), byte(s.id))
	}
	a.b.metrics.negativeAcks.WithLabelValues(ackReason(code)).Inc()
	return append(buf, 0x40, 0x03, byte(s.id>>8), byte(s.id), code)
}

func ackReason(code byte) string {
	switch code {
	case 0x99:
		return "payload_format_invalid"
	case 0x97:
		return "quota_exceeded"
	default:
		return "unspecified_error"
	}
}

// write sends raw PUBACK packets under the client's lock, which mochi also
// holds for its own writes, so packets never interleave.
func (a *acker) write(buf []byte) error {
	if a.cl.Closed() {
		return mqtt.ErrConnectionClosed
	}
	a.cl.Lock()
	defer a.cl.Unlock()
	conn := a.cl.Net.Conn
	if conn == nil {
		return mqtt.ErrConnectionClosed
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := conn.Write(buf)
	_ = conn.SetWriteDeadline(time.Time{})
	return err
}
