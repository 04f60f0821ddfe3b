package telemetry

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// ParseLines reads readings back from the line protocol AppendLine writes
// (the spool's record format), so that consumers other than the InfluxDB
// writer (the detectors) work on Readings. Kind comes from the measurement,
// or from the kind tag for events.
func ParseLines(data []byte) ([]Reading, error) {
	var out []Reading
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var line []byte
		if i < 0 {
			line, data = data, nil
		} else {
			line, data = data[:i], data[i+1:]
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := parseLine(line)
		if err != nil {
			return out, fmt.Errorf("telemetry: parse %q: %w", clip(string(line)), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// splitUnescaped splits s at the first unescaped sep outside quotes.
func splitUnescaped(s []byte, sep byte, quotes bool) (head, rest []byte, found bool) {
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
		case quotes && c == '"':
			inQ = !inQ
		case c == sep && !inQ:
			return s[:i], s[i+1:], true
		}
	}
	return s, nil, false
}

func unescape(s []byte) string {
	if bytes.IndexByte(s, '\\') < 0 {
		return string(s)
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

func parseLine(line []byte) (Reading, error) {
	var r Reading
	key, rest, ok := splitUnescaped(line, ' ', false)
	if !ok {
		return r, fmt.Errorf("no fields")
	}
	fieldsPart, tsPart, ok := splitUnescaped(rest, ' ', true)
	if !ok {
		return r, fmt.Errorf("no timestamp")
	}
	ns, err := strconv.ParseInt(string(bytes.TrimSpace(tsPart)), 10, 64)
	if err != nil {
		return r, fmt.Errorf("timestamp: %w", err)
	}
	r.Time = time.Unix(0, ns)
	m, tags, _ := splitUnescaped(key, ',', false)
	measurement := unescape(m)
	for len(tags) > 0 {
		var tag []byte
		tag, tags, _ = splitUnescaped(tags, ',', false)
		k, v, ok := splitUnescaped(tag, '=', false)
		if !ok {
			return r, fmt.Errorf("tag without value")
		}
		val := unescape(v)
		switch unescape(k) {
		case "device":
			r.Device = val
		case "district":
			r.District = val
		case "contractor":
			r.Contractor = val
		case "category":
			r.Category = val
		case "site":
			r.Site = val
		case "event":
			r.Event = val
		case "kind":
			r.Kind = val
		}
	}
	if measurement != MeasurementEvent {
		r.Kind = measurement
	}
	for len(fieldsPart) > 0 {
		var f []byte
		f, fieldsPart, _ = splitUnescaped(fieldsPart, ',', true)
		fld, err := parseField(f)
		if err != nil {
			return r, err
		}
		if r.Event != "" && fld.Name == "count" && fld.Type == Int && len(fieldsPart) == 0 && len(r.Fields) == 0 {
			continue // the placeholder AppendLine writes for an event without fields
		}
		r.Fields = append(r.Fields, fld)
	}
	return r, nil
}

// parseField parses one field, name=value, of a line: a quoted string, a
// boolean, an integer with the suffix i, or a float.
func parseField(f []byte) (Field, error) {
	k, v, ok := splitUnescaped(f, '=', true)
	if !ok || len(v) == 0 {
		return Field{}, fmt.Errorf("field without value")
	}
	fld := Field{Name: unescape(k)}
	switch {
	case v[0] == '"':
		fld.Type = String
		fld.Str = unescape(bytes.TrimSuffix(v[1:], []byte{'"'}))
	case string(v) == "true" || string(v) == "false":
		fld.Type = Bool
		if string(v) == "true" {
			fld.Num = 1
		}
	case v[len(v)-1] == 'i':
		n, err := strconv.ParseInt(string(v[:len(v)-1]), 10, 64)
		if err != nil {
			return Field{}, err
		}
		fld.Type, fld.Num = Int, float64(n)
	default:
		n, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return Field{}, err
		}
		fld.Type, fld.Num = Float, n
	}
	return fld, nil
}
