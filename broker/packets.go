package broker

import (
	"fmt"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// errSysPublish ends a 3.1.1 connection that publishes with QoS > 0 to a
// $SYS topic: 3.1.1 has no refusing PUBACK, and mochi would otherwise drop
// the message silently and leave the client waiting for ever.
// It wraps ErrRejectPacket, the only error mochi's packet-read hook honours.
var errSysPublish = fmt.Errorf("%w: publish to $SYS", packets.ErrRejectPacket)

// errEmptyClientID ends a 3.1.1 connection whose CONNECT was answered 0x02.
var errEmptyClientID = fmt.Errorf("%w: empty client id without clean session", packets.ErrRejectPacket)

// OnPacketRead corrects what mochi v2.7.9 gets wrong in packets it has read,
// before it processes them:
//   - a 3.1.1 CONNECT with an empty client id and clean session off is
//     answered with CONNACK 0x02 (identifier rejected), as the standard says,
//     instead of 0x80;
//   - a publish through an MQTT 5 topic alias gets its topic back before the
//     ACL sees it (mochi checks the ACL first, on the empty topic);
//   - a QoS 1 or 2 publish to a $SYS topic is refused with reason code 0x87
//     (MQTT 5), or ends the connection (3.1.1), instead of going unanswered.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (out packets.Packet, err error) {
	defer func() {
		if r := recover(); r != nil {
			h.recoveredValue("packet_read", cl, r)
			out, err = pk, errInternal
		}
	}()
	switch pk.FixedHeader.Type {
	case packets.Connect:
		if pk.ProtocolVersion < 5 && !pk.Connect.Clean && pk.Connect.ClientIdentifier == "" {
			h.b.metrics.authFailures.WithLabelValues("client_id").Inc()
			ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: packets.Err3ClientIdentifierNotValid.Code}
			_ = cl.WritePacket(ack)
			return pk, errEmptyClientID
		}
	case packets.Pubrel:
		h.pubrelRead(cl, pk.PacketID)
	case packets.Publish:
		if pk.Properties.TopicAliasFlag && pk.Properties.TopicAlias > 0 && pk.TopicName == "" && cl.State.TopicAliases.Inbound != nil {
			pk.TopicName = cl.State.TopicAliases.Inbound.Set(pk.Properties.TopicAlias, "")
		}
		if isSys(pk.TopicName) && pk.FixedHeader.Qos > 0 {
			h.b.metrics.aclDenied.Inc()
			h.b.logLimited("acl", "mqtt topic refused", "device", string(cl.Properties.Username), "topic", pk.TopicName, "write", true)
			if cl.Properties.ProtocolVersion < 5 {
				return pk, errSysPublish
			}
			typ := packets.Puback
			if pk.FixedHeader.Qos == 2 {
				typ = packets.Pubrec
			}
			_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: pk.PacketID,
				ReasonCode: packets.ErrNotAuthorized.Code})
		}
	}
	return pk, nil
}

// OnPacketEncode adjusts packets mochi v2.7.9 is about to send:
//   - an MQTT 5 CONNACK accepting the client carries the Maximum Packet Size;
//   - the PUBCOMP of a QoS 2 publish the hook received is a success;
//   - no DISCONNECT goes to a 3.1.1 client (the packet does not exist for a
//     server to send in 3.1.1): it is made too large to send, which mochi
//     skips, and the connection is closed all the same.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		if cl.Properties.ProtocolVersion == 5 && pk.ReasonCode < packets.ErrUnspecifiedError.Code {
			pk.Properties.MaximumPacketSize = uint32(h.b.maxPacket)
		}
	case packets.Pubcomp:
		pk = h.pubcompEncode(cl, pk)
	case packets.Disconnect:
		if cl.Properties.ProtocolVersion < 5 {
			pk.Mods.MaxSize = 1
		}
	}
	return pk
}

// isSys reports whether topic is under $SYS, which mochi drops unanswered
// (other "$" topics reach the ACL, which refuses them).
func isSys(topic string) bool {
	return len(topic) >= len(mqtt.SysPrefix) && strings.EqualFold(topic[:len(mqtt.SysPrefix)], mqtt.SysPrefix)
}
