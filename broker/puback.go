package broker

import (
	"errors"

	"github.com/sanigate/sanigate/telemetry"
)

// puback is how one QoS 1 publish is answered.
type puback struct {
	send   bool   // false: no PUBACK, the client keeps the message and resends it
	code   byte   // reason code (MQTT 5 only; 3.1.1 PUBACKs carry none)
	reason string // metric label of a negative acknowledgement, "" for success
}

// Reason codes of a PUBACK [MQTT 5, 3.4.2.1].
const (
	codeSuccess              = 0x00
	codeUnspecifiedError     = 0x80
	codeQuotaExceeded        = 0x97
	codePayloadFormatInvalid = 0x99
)

// pubackFor is the one place that decides how the outcome of a QoS 1
// publish is acknowledged, per protocol version:
//
//	outcome                      MQTT 5          MQTT 3.1.1
//	stored (nil)                 PUBACK 0x00     PUBACK
//	refused for its content      PUBACK 0x99     PUBACK (resending cannot help)
//	storage full (ErrFull)       PUBACK 0x97     none: the client resends later
//	any other failure            PUBACK 0x80     none: the client resends later
func pubackFor(outcome error, v5 bool) puback {
	switch {
	case outcome == nil:
		return puback{send: true, code: codeSuccess}
	case errors.Is(outcome, ErrPayloadRejected):
		if !v5 {
			return puback{send: true, code: codeSuccess}
		}
		return puback{send: true, code: codePayloadFormatInvalid, reason: "payload_format_invalid"}
	case !v5:
		return puback{}
	case errors.Is(outcome, ErrFull):
		return puback{send: true, code: codeQuotaExceeded, reason: "quota_exceeded"}
	default:
		return puback{send: true, code: codeUnspecifiedError, reason: "unspecified_error"}
	}
}

// appendPuback appends the PUBACK packet for packet id with ack's code: the
// short form when the code is success (both versions), the long one otherwise.
func appendPuback(buf []byte, id uint16, ack puback) []byte {
	if ack.code == codeSuccess {
		return append(buf, 0x40, 0x02, byte(id>>8), byte(id))
	}
	return append(buf, 0x40, 0x03, byte(id>>8), byte(id), ack.code)
}

// ErrFull is what a Handler returns (wrapped is fine) when storage is full:
// the one name of that outcome from the spool up to the PUBACK.
var ErrFull = telemetry.ErrFull
