package telemetry

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The scanner must take an object apart exactly as encoding/json does.
func FuzzObjectMembers(f *testing.F) {
	for _, s := range []string{
		`{"ts":1,"fill_pct":50}`,
		`{ "b" : [1, {"x": "]}"}], "a":"q\"uote", "a": 2 }`,
		`{"k\u0065y":true,"e\\":null}`,
		`{}`, `null`, `[1,2]`, `"s"`, `12`,
		`{"n":-1.5e3,"o":{"p":{}},"s":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = bytes.TrimSpace(raw)
		if !json.Valid(raw) {
			return
		}
		var want map[string]json.RawMessage
		werr := json.Unmarshal(raw, &want)
		got, ok := objectMembers(raw, nil)
		if ok != (werr == nil) {
			t.Fatalf("%q: ok %v, encoding/json error %v", raw, ok, werr)
		}
		if !ok {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, encoding/json %d", raw, len(got), len(want))
		}
		for i, m := range got {
			if i > 0 && bytes.Compare(got[i-1].key, m.key) >= 0 {
				t.Fatalf("%q: members not sorted by key", raw)
			}
			w, found := want[string(m.key)]
			if !found || !bytes.Equal(bytes.TrimSpace(w), m.val) {
				t.Fatalf("%q: key %q = %q, encoding/json %q (found %v)", raw, m.key, m.val, w, found)
			}
		}
	})
}

func FuzzArrayElements(f *testing.F) {
	for _, s := range []string{`[]`, `[ {"a":1} , {"b":[2,3]}, "x]" ,null]`, `[[],[[]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = bytes.TrimSpace(raw)
		if !json.Valid(raw) || len(raw) == 0 || raw[0] != '[' {
			return
		}
		var want []json.RawMessage
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		got := arrayElements(raw, nil)
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, encoding/json %d", raw, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], bytes.TrimSpace(want[i])) {
				t.Fatalf("%q: element %d = %q, encoding/json %q", raw, i, got[i], want[i])
			}
		}
	})
}

func TestDecodeAsBefore(t *testing.T) {
	c := NewCodec()
	ts := `"` + c.Now().Add(-1e9).UTC().Format("2006-01-02T15:04:05Z07:00") + `"`
	for _, tc := range []struct{ payload, reason string }{
		{`{"ts":` + ts + `,"fill_pct":50,"fill_pct":60}`, ReasonMalformed}, // a key given twice is refused (strict JSON)
		{`[{"ts":` + ts + `,"fill_pct":50}, {"ts":` + ts + `,"temp_c":-3.5}]`, ""},
		{`{"ts":` + ts + `,"fill_pct":50} x`, ReasonMalformed},
		{`[1]`, ReasonMalformed},
		{`"x"`, ReasonMalformed},
		{`[null]`, ReasonBadTimestamp},
		{`{"ts":` + ts + `,"fill_pct":"50"}`, ReasonWrongType},
		{`{"ts":` + ts + `,"fill_pct":101}`, ReasonOutOfRange},
		{`{"ts":` + ts + `,"fill_pct":1e999}`, ReasonNonFinite},
		{`{"ts":` + ts + `,"fill_pct":50,"smell":1}`, ReasonUnknownField},
		{`{"ts":` + ts + `,"lid_open":1}`, ReasonWrongType},
		{`{"ts":` + ts + `}`, ReasonEmpty},
		{`[]`, ReasonEmpty},
		{`{"fill_pct":5}`, ReasonBadTimestamp},
	} {
		_, err := c.Decode("bin-1", KindBin, false, []byte(tc.payload))
		var re *RejectError
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s: %v", tc.payload, err)
		case tc.reason != "" && (err == nil || !asReject(err, &re) || re.Reason != tc.reason):
			t.Errorf("%s: got %v, want %s", tc.payload, err, tc.reason)
		}
	}
}

func asReject(err error, re **RejectError) bool {
	r, ok := err.(*RejectError)
	*re = r
	return ok
}
