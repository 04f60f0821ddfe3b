package telemetry

import (
	"strconv"
	"strings"
)

// AppendLine appends r as one InfluxDB line protocol line (with a trailing
// newline) to buf, in nanosecond precision. Tags: device, and district,
// contractor, category, site when set; events also carry kind and event.
func AppendLine(buf []byte, r *Reading) []byte {
	buf = appendEscaped(buf, r.Measurement(), measurementEsc)
	if r.Category != "" {
		buf = AppendTag(buf, "category", r.Category)
	}
	if r.Contractor != "" {
		buf = AppendTag(buf, "contractor", r.Contractor)
	}
	buf = AppendTag(buf, "device", r.Device)
	if r.District != "" {
		buf = AppendTag(buf, "district", r.District)
	}
	if r.Event != "" {
		buf = AppendTag(buf, "event", r.Event)
		buf = AppendTag(buf, "kind", r.Kind)
	}
	if r.Site != "" {
		buf = AppendTag(buf, "site", r.Site)
	}
	buf = append(buf, ' ')
	n := 0
	for _, f := range r.Fields {
		if n > 0 {
			buf = append(buf, ',')
		}
		n++
		buf = appendEscaped(buf, f.Name, tagEsc)
		buf = append(buf, '=')
		switch f.Type {
		case Float:
			buf = strconv.AppendFloat(buf, f.Num, 'g', -1, 64)
		case Int:
			buf = strconv.AppendInt(buf, int64(f.Num), 10)
			buf = append(buf, 'i')
		case Bool:
			if f.Num != 0 {
				buf = append(buf, 't', 'r', 'u', 'e')
			} else {
				buf = append(buf, 'f', 'a', 'l', 's', 'e')
			}
		case String:
			buf = append(buf, '"')
			buf = appendEscaped(buf, f.Str, stringEsc)
			buf = append(buf, '"')
		}
	}
	if n == 0 {
		// An event without fields still needs one field to be stored.
		buf = append(buf, "count=1i"...)
	}
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, r.Time.UnixNano(), 10)
	return append(buf, '\n')
}

// AppendTag appends ",k=v" with line protocol's escaping; an empty value,
// which line protocol does not allow, is written as "none". Other writers of
// the gateway's measurements (violations, cases) share it.
func AppendTag(buf []byte, k, v string) []byte {
	buf = append(buf, ',')
	buf = appendEscaped(buf, k, tagEsc)
	buf = append(buf, '=')
	if v == "" {
		v = "none"
	}
	return appendEscaped(buf, v, tagEsc)
}

// AppendQuoted appends s as a line protocol string field value, quoted and escaped.
func AppendQuoted(buf []byte, s string) []byte {
	buf = append(buf, '"')
	buf = appendEscaped(buf, s, stringEsc)
	return append(buf, '"')
}

const (
	measurementEsc = ", "
	tagEsc         = ",= "
	stringEsc      = `"\`
)

func appendEscaped(buf []byte, s, special string) []byte {
	if !strings.ContainsAny(s, special+"\n") {
		return append(buf, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\n' {
			buf = append(buf, ' ') // newlines cannot be escaped in line protocol
			continue
		}
		if strings.IndexByte(special, c) >= 0 {
			buf = append(buf, '\\')
		}
		buf = append(buf, c)
	}
	return buf
}
