package simulators

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Raw MQTT packets, for load generators and for tests that must send what a
// client library would not (malformed or hand-ordered packets). Versions are
// the protocol levels: 4 for MQTT 3.1.1, 5 for MQTT 5.

// AppendConnect appends a CONNECT packet with a clean session, a user name
// and password, and a keepalive of 60 s.
func AppendConnect(b []byte, version byte, clientID, user, pass string) []byte {
	var body []byte
	body = mqttString(body, "MQTT")
	body = append(body, version, 0xc2, 0, 60) // user name, password, clean session; keepalive 60 s
	if version == 5 {
		body = append(body, 0) // no properties
	}
	body = mqttString(body, clientID)
	body = mqttString(body, user)
	body = mqttString(body, pass)
	b = remainingLength(append(b, 0x10), len(body))
	return append(b, body...)
}

// AppendPublish appends a PUBLISH packet at QoS 0 or 1 (id is used at QoS 1
// only).
func AppendPublish(b []byte, version, qos byte, topic string, id uint16, payload []byte) []byte {
	n := 2 + len(topic) + len(payload)
	header := byte(0x30)
	if qos > 0 {
		n += 2
		header = 0x32
	}
	if version == 5 {
		n++ // no properties
	}
	b = remainingLength(append(b, header), n)
	b = mqttString(b, topic)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	if version == 5 {
		b = append(b, 0)
	}
	return append(b, payload...)
}

// ReadPacket reads one packet: its fixed header byte, then what follows the
// remaining length. The result holds the header byte, the remaining length's
// low byte, and the rest.
func ReadPacket(r *bufio.Reader) ([]byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	n, mul := 0, 1
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		n += int(b&0x7f) * mul
		if b&0x80 == 0 {
			break
		}
		mul *= 128
	}
	rest := make([]byte, n)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, err
	}
	return append([]byte{h, byte(n)}, rest...), nil
}

func mqttString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

func remainingLength(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}
