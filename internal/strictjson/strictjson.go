// Package strictjson finds what encoding/json lets through silently: a key
// given twice in one object (the last one wins there).
package strictjson

import (
	"bytes"
	"encoding/json"
)

// DuplicateKey returns the first key that occurs twice in any object of
// the JSON document doc, at any depth. A malformed document reports none;
// the decoder refuses it anyway.
func DuplicateKey(doc []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	return scan(dec)
}

// scan reads one value from dec.
func scan(dec *json.Decoder) (string, bool) {
	t, err := dec.Token()
	if err != nil {
		return "", false
	}
	switch t {
	case json.Delim('{'):
		seen := make(map[string]struct{}, 8)
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", false
			}
			k, _ := kt.(string)
			if _, dup := seen[k]; dup {
				return k, true
			}
			seen[k] = struct{}{}
			if k, dup := scan(dec); dup {
				return k, true
			}
		}
		_, _ = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if k, dup := scan(dec); dup {
				return k, true
			}
		}
		_, _ = dec.Token()
	}
	return "", false
}
