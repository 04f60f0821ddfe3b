package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// QoS 2 publishes from devices: PUBREC once the message is durable, then
// PUBREL from the client and PUBCOMP from mochi. A resent PUBLISH with a
// packet id still awaiting its PUBREL is not stored again. The state lives
// as long as the connection: a PUBLISH resent after a reconnect is stored
// again (at least once across reconnects).

type q2state byte

const (
	q2Storing  q2state = iota + 1 // handed to the handler, not durable yet
	q2Received                    // PUBREC sent, waiting for PUBREL
	q2Released                    // PUBREL seen; mochi's PUBCOMP goes out as success
)

// qos2 tracks each client's QoS 2 packet ids.
type qos2 struct {
	mu  sync.Mutex
	ids map[*mqtt.Client]map[uint16]q2state
}

func (q *qos2) get(cl *mqtt.Client, id uint16) q2state {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ids[cl][id]
}

func (q *qos2) set(cl *mqtt.Client, id uint16, s q2state) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ids == nil {
		q.ids = map[*mqtt.Client]map[uint16]q2state{}
	}
	m := q.ids[cl]
	if m == nil {
		m = map[uint16]q2state{}
		q.ids[cl] = m
	}
	if s == 0 {
		delete(m, id)
		return
	}
	m[id] = s
}

func (q *qos2) forget(cl *mqtt.Client) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.ids, cl)
}

// publishQoS2 stores a QoS 2 publish and answers with PUBREC once durable.
// mochi itself sends nothing for it.
func (h *hook) publishQoS2(cl *mqtt.Client, device, channel string, pk packets.Packet) error {
	switch h.q2.get(cl, pk.PacketID) {
	case q2Storing:
		return packets.ErrRejectPacket // the PUBREC follows once durable
	case q2Received, q2Released:
		h.pubrec(cl, pk.PacketID, packets.CodeSuccess)
		return packets.ErrRejectPacket
	}
	h.q2.set(cl, pk.PacketID, q2Storing)
	done := func(err error) { h.qos2Done(cl, pk.PacketID, err) }
	if herr := h.handler.HandlePublish(device, channel, pk.Payload, done); herr != nil {
		done(herr)
	}
	return packets.ErrRejectPacket
}

// qos2Done answers a QoS 2 publish the handler has made durable or refused,
// with the verdict a QoS 1 publish of the same outcome gets (pubackFor), as
// a PUBREC.
func (h *hook) qos2Done(cl *mqtt.Client, id uint16, err error) {
	ack := pubackFor(err, cl.Properties.ProtocolVersion == 5)
	switch {
	case !ack.send:
		// No PUBREC: the 3.1.1 client keeps the message and resends it.
		h.q2.set(cl, id, 0)
	case ack.code == codeSuccess:
		h.q2.set(cl, id, q2Received)
		h.pubrec(cl, id, packets.CodeSuccess)
	default:
		h.q2.set(cl, id, 0)
		h.b.metrics.negativeAcks.WithLabelValues(ack.reason).Inc()
		h.pubrec(cl, id, packets.Code{Code: ack.code, Reason: ack.reason})
	}
}

func (h *hook) pubrec(cl *mqtt.Client, id uint16, code packets.Code) {
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: id, ReasonCode: code.Code}
	if code.Code >= packets.ErrUnspecifiedError.Code {
		ack.Properties.ReasonString = code.Reason
	}
	_ = cl.WritePacket(ack)
}

// pubrelRead notes a PUBREL for a packet id this hook received, so that
// mochi's PUBCOMP for it (mochi did not track the id) is sent as success.
func (h *hook) pubrelRead(cl *mqtt.Client, id uint16) {
	if h.q2.get(cl, id) == q2Received {
		h.q2.set(cl, id, q2Released)
	}
}

// pubcompEncode turns mochi's "packet identifier not found" PUBCOMP into a
// success for a packet id this hook completed.
func (h *hook) pubcompEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if h.q2.get(cl, pk.PacketID) == q2Released {
		h.q2.set(cl, pk.PacketID, 0)
		pk.ReasonCode = packets.CodeSuccess.Code
		pk.Properties.ReasonString = ""
	}
	return pk
}
