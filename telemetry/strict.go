package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode"
)

// duplicateKey returns the first key that occurs twice at the top level of
// the JSON object obj (encoding/json would keep the last one silently, so a
// device could send one "ts" for a checker and another for storage).
func duplicateKey(obj []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	seen := make(map[string]struct{}, 8)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		k, ok := t.(string)
		if !ok {
			return "", false
		}
		if _, dup := seen[k]; dup {
			return k, true
		}
		seen[k] = struct{}{}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// badText reports a control or bidirectional formatting character in a
// text field: they hide or reorder what an operator reads in a dashboard
// or a case.
func badText(s string) error {
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("control character %U", r)
		case r == '\u061c' || r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069'):
			return fmt.Errorf("bidirectional formatting character %U", r)
		case r == '\ufffd':
			return fmt.Errorf("invalid UTF-8")
		}
	}
	return nil
}
