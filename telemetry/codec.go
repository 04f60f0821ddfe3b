package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sanigate/sanigate/internal/strictjson"
)

// Reasons a message is refused. They are the values of the "reason" label of
// sanigate_messages_rejected_total.
const (
	ReasonMalformed       = "malformed"
	ReasonUnknownField    = "unknown_field"
	ReasonWrongType       = "wrong_type"
	ReasonOutOfRange      = "out_of_range"
	ReasonNonFinite       = "non_finite"
	ReasonBadTimestamp    = "bad_timestamp"
	ReasonFutureTimestamp = "future_timestamp"
	ReasonTooOld          = "too_old"
	ReasonTooMany         = "too_many_readings"
	ReasonEmpty           = "empty"
	ReasonUnknownEvent    = "unknown_event"
	ReasonUnknownDevice   = "unknown_device"
	ReasonUnknownTopic    = "unknown_topic"
	ReasonTooLarge        = "too_large"
)

// ErrRejected is matched by every RejectError.
var ErrRejected = errors.New("message rejected")

// RejectError says why a message was refused. Nothing of a refused message is stored.
type RejectError struct {
	Reason string // one of the Reason constants
	Index  int    // the reading in a batch, -1 for the whole message
	Field  string
	Detail string
}

func (e *RejectError) Error() string {
	s := "rejected (" + e.Reason + ")"
	if e.Index >= 0 {
		s += fmt.Sprintf(" reading %d", e.Index)
	}
	if e.Field != "" {
		s += " field " + strconv.Quote(e.Field)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

func reject(reason string, idx int, field, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Index: idx, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Codec decodes and validates JSON payloads. Its zero value is not usable:
// set the limits (NewCodec gives the defaults).
//
// A payload is one JSON object or an array of them (a buffered upload). Each
// object carries "ts", the device time (RFC 3339, or a Unix time number:
// milliseconds when >= 1e11, else seconds), and the fields of its kind. On the
// events topic each object also names its "event". A message is accepted whole
// or refused whole: one bad reading refuses the batch, so that a device's
// retry does not store half of it twice.
type Codec struct {
	MaxFutureSkew time.Duration
	MaxAge        time.Duration
	MaxReadings   int
	Now           func() time.Time
}

// NewCodec returns a codec with the default limits.
func NewCodec() *Codec {
	return &Codec{MaxFutureSkew: 5 * time.Minute, MaxAge: 30 * 24 * time.Hour, MaxReadings: 1000, Now: time.Now}
}

// Decode turns payload into readings of the device's kind. events selects the
// events vocabulary. It returns a *RejectError for anything it refuses.
func (c *Codec) Decode(device, kind string, events bool, payload []byte) ([]Reading, error) {
	schema, ok := schemas[kind]
	if !ok {
		return nil, reject(ReasonUnknownDevice, -1, "", "unknown kind %q", kind)
	}
	p := bytes.TrimLeft(payload, " \t\r\n")
	if len(p) == 0 {
		return nil, reject(ReasonEmpty, -1, "", "empty payload")
	}
	if !json.Valid(p) {
		var v json.RawMessage
		return nil, malformed(json.Unmarshal(p, &v))
	}
	var one [1][]byte
	objs := one[:]
	if p[0] == '[' {
		objs = arrayElements(p, nil)
		if len(objs) == 0 {
			return nil, reject(ReasonEmpty, -1, "", "empty array")
		}
		if len(objs) > c.MaxReadings {
			return nil, reject(ReasonTooMany, -1, "", "%d readings in one message, at most %d", len(objs), c.MaxReadings)
		}
	} else {
		objs[0] = bytes.TrimRight(p, " \t\r\n")
	}
	now := c.Now()
	out := make([]Reading, 0, len(objs))
	var buf [16]member
	for i, raw := range objs {
		idx := i
		if p[0] != '[' {
			idx = -1
		}
		r, err := c.decodeOne(device, kind, schema, events, raw, idx, now, buf[:0])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func malformed(err error) *RejectError {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return reject(ReasonMalformed, -1, "", "invalid JSON at byte %d: %v", se.Offset, se)
	}
	return reject(ReasonMalformed, -1, "", "%v", err)
}

func (c *Codec) decodeOne(device, kind string, schema map[string]fieldSpec, events bool, raw []byte, idx int, now time.Time, obj []member) (Reading, error) {
	obj, ok := objectMembers(raw, obj)
	if !ok {
		return Reading{}, reject(ReasonMalformed, idx, "", "a reading must be a JSON object")
	}
	if members(raw) != len(obj) {
		k, _ := strictjson.DuplicateKey(raw)
		return Reading{}, reject(ReasonMalformed, idx, k, "key %q appears twice", k)
	}
	r := Reading{Device: device, Kind: kind, Fields: make([]Field, 0, len(obj))}
	tsRaw, ok := lookup(obj, "ts")
	if !ok {
		return Reading{}, reject(ReasonBadTimestamp, idx, "ts", "missing device time")
	}
	ts, err := parseTime(tsRaw)
	if err != nil {
		return Reading{}, reject(ReasonBadTimestamp, idx, "ts", "%v", err)
	}
	if ts.After(now.Add(c.MaxFutureSkew)) {
		return Reading{}, reject(ReasonFutureTimestamp, idx, "ts", "%s is %s ahead of the gateway clock", ts.Format(time.RFC3339Nano), ts.Sub(now).Round(time.Second))
	}
	if ts.Before(now.Add(-c.MaxAge)) {
		return Reading{}, reject(ReasonTooOld, idx, "ts", "%s is older than %s", ts.Format(time.RFC3339Nano), c.MaxAge)
	}
	r.Time = ts

	if events {
		evRaw, ok := lookup(obj, "event")
		if !ok {
			return Reading{}, reject(ReasonUnknownEvent, idx, "event", "missing event name")
		}
		var ev string
		if err := json.Unmarshal(evRaw, &ev); err != nil {
			return Reading{}, reject(ReasonWrongType, idx, "event", "event name must be a string")
		}
		es, ok := eventSchemas[kind][ev]
		if !ok {
			return Reading{}, reject(ReasonUnknownEvent, idx, "event", "%q is not an event of a %s", ev, kind)
		}
		r.Event = ev
		schema = es
	}
	for _, m := range obj {
		if string(m.key) == "ts" || (events && string(m.key) == "event") {
			continue
		}
		spec, ok := schema[string(m.key)]
		if !ok {
			return Reading{}, reject(ReasonUnknownField, idx, string(m.key), "not a field of a %s", kind)
		}
		f, rerr := decodeField(fieldNames[string(m.key)], spec, m.val, idx)
		if rerr != nil {
			return Reading{}, rerr
		}
		r.Fields = append(r.Fields, f)
	}
	if len(r.Fields) == 0 && !events {
		return Reading{}, reject(ReasonEmpty, idx, "", "a reading without fields")
	}
	if _, hasLat := r.Get("lat"); hasLat {
		if _, hasLon := r.Get("lon"); !hasLon {
			return Reading{}, reject(ReasonMalformed, idx, "lon", "lat without lon")
		}
	} else if _, hasLon := r.Get("lon"); hasLon {
		return Reading{}, reject(ReasonMalformed, idx, "lat", "lon without lat")
	}
	return r, nil
}

func decodeField(name string, spec fieldSpec, raw []byte, idx int) (Field, *RejectError) {
	f := Field{Name: name, Type: spec.typ}
	b := bytes.TrimSpace(raw)
	switch spec.typ {
	case Bool:
		switch string(b) {
		case "true":
			f.Num = 1
		case "false":
			f.Num = 0
		default:
			return f, reject(ReasonWrongType, idx, name, "want true or false, got %s", clip(string(b)))
		}
		return f, nil
	case String:
		var str string // not &f.Str: that would move every field to the heap
		if err := json.Unmarshal(raw, &str); err != nil {
			return f, reject(ReasonWrongType, idx, name, "want a string, got %s", clip(string(b)))
		}
		f.Str = str
		if len(f.Str) > 256 {
			return f, reject(ReasonOutOfRange, idx, name, "string longer than 256 bytes")
		}
		if err := badText(f.Str); err != nil {
			return f, reject(ReasonWrongType, idx, name, "%v", err)
		}
		return f, nil
	}
	if len(b) == 0 || !(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		return f, reject(ReasonWrongType, idx, name, "want a number, got %s", clip(string(b)))
	}
	v, err := parseNumber(b)
	s := ""
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < spec.min || v > spec.max || (spec.typ == Int && v != math.Trunc(v)) {
		s = string(b) // for the refusal's message
	}
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return f, reject(ReasonNonFinite, idx, name, "%s is not a finite number", clip(s))
		}
		return f, reject(ReasonWrongType, idx, name, "want a number, got %s", clip(s))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return f, reject(ReasonNonFinite, idx, name, "%s is not a finite number", clip(s))
	}
	if spec.typ == Int && v != math.Trunc(v) {
		return f, reject(ReasonWrongType, idx, name, "want a whole number, got %s", clip(s))
	}
	if v < spec.min || v > spec.max {
		return f, reject(ReasonOutOfRange, idx, name, "%s is outside %g..%g", clip(s), spec.min, spec.max)
	}
	f.Num = v
	return f, nil
}

// parseTime reads RFC 3339 strings and Unix times (seconds, or milliseconds
// when the number is at least 1e11, which as seconds would be year 5138).
func parseTime(raw []byte) (time.Time, error) {
	b := bytes.TrimSpace(raw)
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", str)
		}
		return t, nil
	}
	v, err := parseNumber(b)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return time.Time{}, fmt.Errorf("%s is not a time", clip(string(b)))
	}
	if v >= 1e11 {
		ms := int64(v)
		return time.UnixMilli(ms).Add(time.Duration((v - float64(ms)) * 1e6)), nil
	}
	sec := math.Floor(v)
	return time.Unix(int64(sec), int64((v-sec)*1e9)), nil
}

// parseNumber parses a JSON number without copying it: short numbers go
// through a stack buffer.
func parseNumber(b []byte) (float64, error) {
	if len(b) <= 32 {
		var buf [32]byte
		n := copy(buf[:], b)
		return strconv.ParseFloat(string(buf[:n]), 64)
	}
	return strconv.ParseFloat(string(b), 64)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Check validates a reading built by a driver against its kind's schema:
// known fields of the right type, finite and in range, and a sane time.
func (c *Codec) Check(r *Reading, idx int) *RejectError {
	schema := schemas[r.Kind]
	if r.Event != "" {
		es, ok := eventSchemas[r.Kind][r.Event]
		if !ok {
			return reject(ReasonUnknownEvent, idx, "event", "%q is not an event of a %s", r.Event, r.Kind)
		}
		schema = es
	}
	if schema == nil {
		return reject(ReasonUnknownDevice, idx, "", "unknown kind %q", r.Kind)
	}
	now := c.Now()
	if r.Time.IsZero() || r.Time.After(now.Add(c.MaxFutureSkew)) {
		return reject(ReasonFutureTimestamp, idx, "ts", "time %s is not plausible", r.Time.Format(time.RFC3339))
	}
	for i := range r.Fields {
		f := &r.Fields[i]
		spec, ok := schema[f.Name]
		if !ok {
			return reject(ReasonUnknownField, idx, f.Name, "not a field of a %s", r.Kind)
		}
		// Numbers take the schema's type, so that InfluxDB sees one type per
		// field whichever transport the reading came by.
		switch {
		case spec.typ == f.Type:
		case spec.typ == Float && f.Type == Int:
			f.Type = Float
		case spec.typ == Int && f.Type == Float && f.Num == math.Trunc(f.Num):
			f.Type = Int
		default:
			return reject(ReasonWrongType, idx, f.Name, "wrong type")
		}
		if f.Type == String {
			continue
		}
		if math.IsNaN(f.Num) || math.IsInf(f.Num, 0) {
			return reject(ReasonNonFinite, idx, f.Name, "not a finite number")
		}
		if f.Num < spec.min || f.Num > spec.max {
			return reject(ReasonOutOfRange, idx, f.Name, "%g is outside %g..%g", f.Num, spec.min, spec.max)
		}
	}
	return nil
}
