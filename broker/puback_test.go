package broker

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
)

func TestPubackForMQTT5(t *testing.T) {
	full := fmt.Errorf("telemetry: store bin-1: %w", fmt.Errorf("%w: quota and its reserve", spool.ErrFull))
	for _, c := range []struct {
		name    string
		outcome error
		want    []byte
		reason  string
	}{
		{"stored", nil, []byte{0x40, 2, 0x12, 0x34}, ""},
		{"bad payload", fmt.Errorf("%w: %w", telemetry.ErrRefused, &telemetry.RejectError{Reason: "range"}), []byte{0x40, 3, 0x12, 0x34, 0x99}, "payload_format_invalid"},
		{"spool full", full, []byte{0x40, 3, 0x12, 0x34, 0x97}, "quota_exceeded"},
		{"other failure", errors.New("disk on fire"), []byte{0x40, 3, 0x12, 0x34, 0x80}, "unspecified_error"},
		{"internal", errInternal, []byte{0x40, 3, 0x12, 0x34, 0x80}, "unspecified_error"},
	} {
		ack := pubackFor(c.outcome, true)
		if !ack.send {
			t.Errorf("%s: no PUBACK, want one", c.name)
			continue
		}
		if got := appendPuback(nil, 0x1234, ack); !bytes.Equal(got, c.want) || ack.reason != c.reason {
			t.Errorf("%s: got % x (%q), want % x (%q)", c.name, got, ack.reason, c.want, c.reason)
		}
	}
}

func TestPubackForMQTT311(t *testing.T) {
	full := fmt.Errorf("telemetry: store bin-1: %w", spool.ErrFull)
	for _, c := range []struct {
		name    string
		outcome error
		send    bool
	}{
		{"stored", nil, true},
		{"bad payload", fmt.Errorf("%w: %w", telemetry.ErrRefused, &telemetry.RejectError{Reason: "range"}), true},
		{"spool full", full, false},
		{"other failure", errors.New("disk on fire"), false},
		{"internal", errInternal, false},
	} {
		ack := pubackFor(c.outcome, false)
		if ack.send != c.send {
			t.Errorf("%s: send %v, want %v", c.name, ack.send, c.send)
			continue
		}
		if c.send {
			// 3.1.1 has no reason code: always the two-byte PUBACK.
			if got := appendPuback(nil, 7, ack); !bytes.Equal(got, []byte{0x40, 2, 0, 7}) || ack.reason != "" {
				t.Errorf("%s: got % x (%q)", c.name, got, ack.reason)
			}
		}
	}
}
