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
	var p *Parser
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
		r, err := p.Line(line)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// A Parser reads readings back from line protocol as ParseLines does, for a
// consumer that parses a steady stream (the detectors): it makes one string
// for each tag key, tag value, measurement and field name it meets and
// gives that same string again, instead of a new one for every line (a
// fleet has few of them; string field values are not kept), and it carves
// the readings' fields out of blocks shared between readings. A reading's
// fields are never written by the parser again, and appending to them
// cannot reach another reading's. The zero Parser is ready to use; a nil
// one parses as ParseLines does. A Parser is not safe for concurrent use.
type Parser struct {
	strs   map[string]string
	fields []Field // the rest of the current block
}

const (
	// maxParserStrings bounds what a Parser keeps: past it, it starts over.
	maxParserStrings = 1 << 14
	// fieldBlock is how many fields a Parser allocates at once; a reading
	// with more than a quarter of it gets its own.
	fieldBlock = 256
)

// Line parses one line (without its newline) into a reading.
func (p *Parser) Line(line []byte) (Reading, error) {
	r, err := p.parseLine(line)
	if err != nil {
		return r, fmt.Errorf("telemetry: parse %q: %w", clip(string(line)), err)
	}
	return r, nil
}

// name returns s unescaped, the same string every time for the same bytes.
func (p *Parser) name(s []byte) string {
	if p == nil || bytes.IndexByte(s, '\\') >= 0 {
		return unescape(s)
	}
	if v, ok := p.strs[string(s)]; ok {
		return v
	}
	if p.strs == nil || len(p.strs) >= maxParserStrings {
		p.strs = make(map[string]string, 64)
	}
	v := string(s)
	p.strs[v] = v
	return v
}

// fieldSlice returns an empty slice with room for n fields.
func (p *Parser) fieldSlice(n int) []Field {
	if p == nil || n > fieldBlock/4 {
		return make([]Field, 0, n)
	}
	if len(p.fields) < n {
		p.fields = make([]Field, fieldBlock)
	}
	f := p.fields[:0:n]
	p.fields = p.fields[n:]
	return f
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

func (p *Parser) parseLine(line []byte) (Reading, error) {
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
	measurement := p.name(m)
	for len(tags) > 0 {
		var tag []byte
		tag, tags, _ = splitUnescaped(tags, ',', false)
		k, v, ok := splitUnescaped(tag, '=', false)
		if !ok {
			return r, fmt.Errorf("tag without value")
		}
		if bytes.IndexByte(k, '\\') >= 0 {
			k = []byte(unescape(k))
		}
		switch string(k) {
		case "device":
			r.Device = p.name(v)
		case "district":
			r.District = p.name(v)
		case "contractor":
			r.Contractor = p.name(v)
		case "category":
			r.Category = p.name(v)
		case "site":
			r.Site = p.name(v)
		case "event":
			r.Event = p.name(v)
		case "kind":
			r.Kind = p.name(v)
		}
	}
	if measurement != MeasurementEvent {
		r.Kind = measurement
	}
	// At most one field a comma, and one more.
	r.Fields = p.fieldSlice(bytes.Count(fieldsPart, []byte{','}) + 1)
	for len(fieldsPart) > 0 {
		var f []byte
		f, fieldsPart, _ = splitUnescaped(fieldsPart, ',', true)
		fld, err := p.parseField(f)
		if err != nil {
			return r, err
		}
		if r.Event != "" && fld.Name == "count" && fld.Type == Int && len(fieldsPart) == 0 && len(r.Fields) == 0 {
			continue // the placeholder AppendLine writes for an event without fields
		}
		r.Fields = append(r.Fields, fld)
	}
	if len(r.Fields) == 0 {
		r.Fields = nil
	}
	return r, nil
}

// parseField parses one field, name=value, of a line: a quoted string, a
// boolean, an integer with the suffix i, or a float.
func (p *Parser) parseField(f []byte) (Field, error) {
	k, v, ok := splitUnescaped(f, '=', true)
	if !ok || len(v) == 0 {
		return Field{}, fmt.Errorf("field without value")
	}
	fld := Field{Name: p.name(k)}
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
