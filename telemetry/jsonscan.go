package telemetry

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// A payload is checked once as a whole (json.Valid); the readings are then
// taken apart by the small scanner below without building maps or copying
// values, which keeps encoding/json's allocations off the hot path. The
// scanner relies on its input being valid JSON.

// member is one "key": value pair of a JSON object: the key unescaped, the
// value as its raw bytes.
type member struct {
	key []byte
	val []byte
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string whose opening quote is at i.
func skipString(p []byte, i int) int {
	for i++; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value starting at i.
func skipValue(p []byte, i int) int {
	switch p[i] {
	case '"':
		return skipString(p, i)
	case '{', '[':
		depth := 0
		for i < len(p) {
			switch p[i] {
			case '"':
				i = skipString(p, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for ; i < len(p); i++ {
			switch p[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
		}
		return i
	}
}

// arrayElements appends the raw elements of the array p.
func arrayElements(p []byte, dst [][]byte) [][]byte {
	i := skipSpace(p, 1)
	for i < len(p) && p[i] != ']' {
		end := skipValue(p, i)
		dst = append(dst, p[i:end])
		i = skipSpace(p, end)
		if i < len(p) && p[i] == ',' {
			i = skipSpace(p, i+1)
		}
	}
	return dst
}

// objectMembers appends the members of the object raw, sorted by key, a
// repeated key keeping its last value (as encoding/json does). ok is false
// when raw is not an object; null is an object without members.
func objectMembers(raw []byte, dst []member) (_ []member, ok bool) {
	if string(raw) == "null" {
		return dst, true
	}
	if len(raw) == 0 || raw[0] != '{' {
		return dst, false
	}
	start := len(dst)
	i := skipSpace(raw, 1)
	for i < len(raw) && raw[i] == '"' {
		kEnd := skipString(raw, i)
		key := raw[i+1 : kEnd-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var s string
			_ = json.Unmarshal(raw[i:kEnd], &s)
			key = []byte(s)
		}
		i = skipSpace(raw, kEnd)
		i = skipSpace(raw, i+1) // the colon
		vEnd := skipValue(raw, i)
		dst = append(dst, member{key: key, val: raw[i:vEnd]})
		i = skipSpace(raw, vEnd)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	ms := dst[start:]
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	out := ms[:0]
	for j := range ms {
		if j+1 < len(ms) && bytes.Equal(ms[j].key, ms[j+1].key) {
			continue // a later value of the same key wins
		}
		out = append(out, ms[j])
	}
	return dst[:start+len(out)], true
}

// lookup returns the value of key among sorted members.
func lookup(ms []member, key string) ([]byte, bool) {
	for _, m := range ms {
		if string(m.key) == key {
			return m.val, true
		}
	}
	return nil, false
}

// fieldNames interns the names of known fields, so that a decoded field's
// name is the schema's string, not a copy of the payload's bytes.
var fieldNames = func() map[string]string {
	m := map[string]string{}
	for _, s := range schemas {
		for k := range s {
			m[k] = k
		}
	}
	for _, kind := range eventSchemas {
		for _, s := range kind {
			for k := range s {
				m[k] = k
			}
		}
	}
	return m
}()
