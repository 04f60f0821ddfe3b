package telemetry

import (
	"strconv"
	"time"
)

// Line encodes one line of InfluxDB line protocol into a caller's buffer. It
// is the gateway's one encoder: readings, violations, coverage and case
// points are all written with it, so they follow the same rules:
//
//   - tags with an empty key or value are left out (InfluxDB refuses an empty
//     tag value; an absent tag reads as "" in InfluxQL);
//   - commas and spaces are escaped in the measurement; commas, spaces and
//     equals signs in tag keys, tag values and field keys; double quotes and
//     backslashes in string field values;
//   - a newline or carriage return anywhere becomes a space: line protocol
//     cannot escape them, and the spool and InfluxDB split records at newlines;
//   - tags are written in the order they are added: add them sorted by key,
//     as InfluxDB stores them.
//
// Use it as StartLine, then Tag for every tag, then the field methods, then
// End. A line needs at least one field.
type Line struct {
	buf    []byte
	fields int
}

// StartLine begins a line of measurement m at the end of buf.
func StartLine(buf []byte, m string) Line {
	return Line{buf: appendEscaped(buf, m, measurementEsc)}
}

// Tag adds the tag k=v; an empty key or value is left out.
func (l *Line) Tag(k, v string) {
	if k == "" || v == "" {
		return
	}
	l.buf = append(l.buf, ',')
	l.buf = appendEscaped(l.buf, k, tagEsc)
	l.buf = append(l.buf, '=')
	l.buf = appendEscaped(l.buf, v, tagEsc)
}

func (l *Line) key(k string) {
	if l.fields == 0 {
		l.buf = append(l.buf, ' ')
	} else {
		l.buf = append(l.buf, ',')
	}
	l.fields++
	l.buf = appendEscaped(l.buf, k, tagEsc)
	l.buf = append(l.buf, '=')
}

// Float adds a float field (line protocol types a number without suffix as a
// float, so 3 is written "3").
func (l *Line) Float(k string, v float64) {
	l.key(k)
	l.buf = strconv.AppendFloat(l.buf, v, 'g', -1, 64)
}

// Int adds an integer field.
func (l *Line) Int(k string, v int64) {
	l.key(k)
	l.buf = strconv.AppendInt(l.buf, v, 10)
	l.buf = append(l.buf, 'i')
}

// Bool adds a boolean field.
func (l *Line) Bool(k string, v bool) {
	l.key(k)
	l.buf = strconv.AppendBool(l.buf, v)
}

// String adds a string field, quoted and escaped.
func (l *Line) String(k, v string) {
	l.key(k)
	l.buf = append(l.buf, '"')
	l.buf = appendEscaped(l.buf, v, stringEsc)
	l.buf = append(l.buf, '"')
}

// Fields is the number of fields added so far.
func (l *Line) Fields() int { return l.fields }

// End writes the timestamp t in nanoseconds and the newline, and returns the
// buffer.
func (l *Line) End(t time.Time) []byte {
	l.buf = append(l.buf, ' ')
	l.buf = strconv.AppendInt(l.buf, t.UnixNano(), 10)
	return append(l.buf, '\n')
}

// AppendLine appends r as one line (with a trailing newline) to buf, in
// nanosecond precision. Tags: device, and district, contractor, category,
// site when set; events also carry kind and event.
func AppendLine(buf []byte, r *Reading) []byte {
	l := StartLine(buf, r.Measurement())
	l.Tag("category", r.Category)
	l.Tag("contractor", r.Contractor)
	l.Tag("device", r.Device)
	l.Tag("district", r.District)
	if r.Event != "" {
		l.Tag("event", r.Event)
		l.Tag("kind", r.Kind)
	}
	l.Tag("site", r.Site)
	for _, f := range r.Fields {
		switch f.Type {
		case Float:
			l.Float(f.Name, f.Num)
		case Int:
			l.Int(f.Name, int64(f.Num))
		case Bool:
			l.Bool(f.Name, f.Num != 0)
		case String:
			l.String(f.Name, f.Str)
		}
	}
	if l.Fields() == 0 {
		// An event without fields still needs one field to be stored.
		l.Int("count", 1)
	}
	return l.End(r.Time)
}

// The bytes each part of a line escapes with a backslash; line breaks are
// written as spaces in all of them.
var (
	measurementEsc = escapeSet(", ")
	tagEsc         = escapeSet(",= ")
	stringEsc      = escapeSet(`"\`)
)

// escapes marks, for each byte, 1 if it is escaped, and for a line break 2
// (written as a space) or 3 (as an escaped space, where spaces are escaped).
type escapes [256]uint8

func escapeSet(special string) *escapes {
	var e escapes
	for i := 0; i < len(special); i++ {
		e[special[i]] = 1
	}
	e['\n'], e['\r'] = 2+e[' '], 2+e[' ']
	return &e
}

func appendEscaped(buf []byte, s string, esc *escapes) []byte {
	i := 0
	for i < len(s) && esc[s[i]] == 0 {
		i++
	}
	buf = append(buf, s[:i]...)
	for ; i < len(s); i++ {
		switch c := s[i]; esc[c] {
		case 0:
			buf = append(buf, c)
		case 1:
			buf = append(buf, '\\', c)
		case 2:
			buf = append(buf, ' ')
		default:
			buf = append(buf, '\\', ' ')
		}
	}
	return buf
}
