package telemetry

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary payloads to the codec for every kind, as
// telemetry and as events. It must refuse or accept without panicking; an
// accepted reading has only schema fields, a timestamp within the limits,
// and encodes to exactly one line.
func FuzzDecode(f *testing.F) {
	ts := `"2026-11-30T10:00:00Z"`
	for _, s := range []string{
		`{"ts":` + ts + `,"fill_pct":50}`,
		`{"ts":` + ts + `,"fill_pct":50,"ts":"1970-01-01T00:00:00Z"}`,
		`[{"ts":` + ts + `,"lat":39.9,"lon":116.4,"speed_kmh":20}]`,
		`{"ts":` + ts + `,"event":"pickup","bin":"bin-1","lat":39.9,"lon":116.4}`,
		`{"ts":` + ts + `,"event":"door_forced","door":"a\u202eb"}`,
		`{"ts":1764496800000,"nh3_mgm3":1e999}`,
		`{"ts":` + ts + `,"nh3_mgm3":"x"}`,
		`[]`, `{}`, `null`, `[[[[`, `{"ts":` + ts + `,"fill_pct":-0}`,
	} {
		for k := range kinds() {
			f.Add(uint8(k), false, []byte(s))
			f.Add(uint8(k), true, []byte(s))
		}
	}
	now := time.Date(2026, 11, 30, 10, 5, 0, 0, time.UTC)
	codec := NewCodec()
	codec.Now = func() time.Time { return now }
	ks := kinds()
	f.Fuzz(func(t *testing.T, k uint8, events bool, payload []byte) {
		kind := ks[int(k)%len(ks)]
		rs, err := codec.Decode("dev-1", kind, events, payload)
		if err != nil {
			return
		}
		for i := range rs {
			r := &rs[i]
			if r.Time.After(now.Add(codec.MaxFutureSkew)) || r.Time.Before(now.Add(-codec.MaxAge)) {
				t.Fatalf("accepted a timestamp out of bounds: %s", r.Time)
			}
			schema := schemas[kind]
			if events {
				schema = eventSchemas[kind][r.Event]
			}
			for _, fl := range r.Fields {
				if _, ok := schema[fl.Name]; !ok {
					t.Fatalf("accepted field %q not in the %s schema", fl.Name, kind)
				}
			}
			line := AppendLine(nil, r)
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("reading encodes to %q, not one line", line)
			}
		}
	})
}

func kinds() []string {
	return []string{KindBin, KindTruck, KindToilet, KindSweeper, KindWeighbridge}
}
