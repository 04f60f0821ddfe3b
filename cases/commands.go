package cases

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sanigate/sanigate/internal/strictjson"
)

// CommandState is where a command to a device stands.
type CommandState string

// Command states. Queued: stored and handed to the broker. Delivered: the
// device's session acknowledged the QoS 1 publish (its PUBACK). Acknowledged
// or failed: the device answered on its cmd/ack topic. Expired: no answer
// before the deadline. The last three are final.
const (
	CommandQueued       CommandState = "queued"
	CommandDelivered    CommandState = "delivered"
	CommandAcknowledged CommandState = "acknowledged"
	CommandFailed       CommandState = "failed"
	CommandExpired      CommandState = "expired"
)

// Command types a device understands.
const (
	CmdSetInterval   = "set_interval"
	CmdOpenLid       = "open_lid"
	CmdResetCounter  = "reset_counter"
	CmdFetchFirmware = "fetch_firmware"
)

// Bounds of a command's parameters and deadline.
const (
	minIntervalS    = 1
	maxIntervalS    = 86400
	maxLidOpenS     = 600
	maxURLBytes     = 2048
	defaultCmdTTL   = time.Hour
	maxCmdTTL       = 7 * 24 * time.Hour
	maxAckBytes     = 4096
	maxAckDetailLen = 500
)

var counterName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
var versionText = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// Command is a command to a device and its state.
type Command struct {
	ID          int64           `json:"id"`
	Device      string          `json:"device"`
	Type        string          `json:"type"`
	Params      json.RawMessage `json:"params"`
	State       CommandState    `json:"state"`
	Detail      string          `json:"detail,omitempty"`
	RequestedBy string          `json:"requested_by"`
	Created     time.Time       `json:"created"`
	Deadline    time.Time       `json:"deadline"`
	Delivered   *time.Time      `json:"delivered,omitempty"`
	Finished    *time.Time      `json:"finished,omitempty"`
}

// CommandRequest is the body of POST /api/v1/devices/{id}/commands.
type CommandRequest struct {
	Type   string          `json:"type"`
	Params json.RawMessage `json:"params,omitempty"`
	// TTLSeconds is how long the device has to acknowledge (default 3600,
	// at most 7 days).
	TTLSeconds int `json:"ttl_seconds,omitempty"`
}

type setIntervalParams struct {
	Seconds int `json:"seconds"`
}

type openLidParams struct {
	Seconds int `json:"seconds,omitempty"`
}

type resetCounterParams struct {
	Counter string `json:"counter"`
}

type fetchFirmwareParams struct {
	URL     string `json:"url"`
	SHA256  string `json:"sha256"`
	Version string `json:"version,omitempty"`
}

// validate checks the request and returns its parameters in canonical form
// and its time to live; every error wraps ErrBadRequest and says what is wrong.
func (r CommandRequest) validate() (json.RawMessage, time.Duration, error) {
	ttl := defaultCmdTTL
	if r.TTLSeconds != 0 {
		if r.TTLSeconds < 1 || time.Duration(r.TTLSeconds)*time.Second > maxCmdTTL {
			return nil, 0, fmt.Errorf("%w: ttl_seconds must be between 1 and %d", ErrBadRequest, int(maxCmdTTL/time.Second))
		}
		ttl = time.Duration(r.TTLSeconds) * time.Second
	}
	raw := r.Params
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = json.RawMessage("{}")
	}
	var (
		v   any
		err error
	)
	switch r.Type {
	case CmdSetInterval:
		var p setIntervalParams
		if err = decodeParams(raw, &p); err == nil && (p.Seconds < minIntervalS || p.Seconds > maxIntervalS) {
			err = fmt.Errorf("%w: set_interval: params.seconds must be between %d and %d", ErrBadRequest, minIntervalS, maxIntervalS)
		}
		v = p
	case CmdOpenLid:
		var p openLidParams
		if err = decodeParams(raw, &p); err == nil && (p.Seconds < 0 || p.Seconds > maxLidOpenS) {
			err = fmt.Errorf("%w: open_lid: params.seconds must be between 1 and %d (or left out)", ErrBadRequest, maxLidOpenS)
		}
		v = p
	case CmdResetCounter:
		var p resetCounterParams
		if err = decodeParams(raw, &p); err == nil && !counterName.MatchString(p.Counter) {
			err = fmt.Errorf("%w: reset_counter: params.counter must be a name of lower-case letters, digits and _ (at most 32)", ErrBadRequest)
		}
		v = p
	case CmdFetchFirmware:
		var p fetchFirmwareParams
		if err = decodeParams(raw, &p); err == nil {
			err = p.check()
		}
		v = p
	case "":
		return nil, 0, fmt.Errorf("%w: type is required (one of %s)", ErrBadRequest, strings.Join(commandTypes, ", "))
	default:
		return nil, 0, fmt.Errorf("%w: type %q is not a command (one of %s)", ErrBadRequest, truncate(r.Type, 40), strings.Join(commandTypes, ", "))
	}
	if err != nil {
		return nil, 0, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("cases: encode command params: %w", err)
	}
	return out, ttl, nil
}

var commandTypes = []string{CmdSetInterval, CmdOpenLid, CmdResetCounter, CmdFetchFirmware}

// decodeParams decodes one JSON object with no unknown or duplicate fields.
func decodeParams(raw json.RawMessage, v any) error {
	return decodeStrict("params", raw, v)
}

// decodeStrict decodes exactly one JSON object into v, refusing unknown and
// repeated keys.
func decodeStrict(what string, raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadRequest, what, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s: data after the JSON object", ErrBadRequest, what)
	}
	if k, dup := strictjson.DuplicateKey(raw); dup {
		return fmt.Errorf("%w: %s: key %q appears twice", ErrBadRequest, what, truncate(k, 40))
	}
	return nil
}

func (p fetchFirmwareParams) check() error {
	if p.URL == "" || len(p.URL) > maxURLBytes {
		return fmt.Errorf("%w: fetch_firmware: params.url is required (at most %d bytes)", ErrBadRequest, maxURLBytes)
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return fmt.Errorf("%w: fetch_firmware: params.url is not a URL", ErrBadRequest)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%w: fetch_firmware: params.url must be an https URL", ErrBadRequest)
	}
	if u.Host == "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: fetch_firmware: params.url needs a host and no user, password or fragment", ErrBadRequest)
	}
	if strings.ContainsAny(p.URL, " \t\r\n\\") {
		return fmt.Errorf("%w: fetch_firmware: params.url has spaces or backslashes", ErrBadRequest)
	}
	if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("%w: fetch_firmware: params.sha256 must be the image's SHA-256 in 64 hex digits", ErrBadRequest)
	}
	if p.Version != "" && !versionText.MatchString(p.Version) {
		return fmt.Errorf("%w: fetch_firmware: params.version must be up to 64 letters, digits and . _ + -", ErrBadRequest)
	}
	return nil
}

// truncate shortens s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// CommandMessage is what a device receives on sanigate/v1/devices/{id}/cmd.
// A crew terminal gets dispatch notifications on the same topic; a command
// is told apart by its command_id.
type CommandMessage struct {
	CommandID int64           `json:"command_id"`
	Type      string          `json:"type"`
	Params    json.RawMessage `json:"params"`
	Deadline  time.Time       `json:"deadline"`
}

// CommandAck is what a device publishes on sanigate/v1/devices/{id}/cmd/ack.
type CommandAck struct {
	CommandID int64  `json:"command_id"`
	Status    string `json:"status"` // "ok" or "failed"
	Detail    string `json:"detail,omitempty"`
}
