package telemetry

import (
	"reflect"
	"testing"
	"time"
)

func TestLineRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 28, 8, 0, 0, 123456789, time.UTC)
	in := []Reading{
		{Device: "truck 1", Kind: KindTruck, Time: ts, Category: "kitchen", Contractor: "a,b=c", District: "north", Site: "kw-plant",
			Fields: []Field{{Name: "lat", Type: Float, Num: 39.9}, {Name: "load_kg", Type: Float, Num: -12.5}, {Name: "tipper", Type: Bool, Num: 1}, {Name: "ignition", Type: Bool}}},
		{Device: "t-1", Kind: KindToilet, Time: ts, Fields: []Field{{Name: "people_in", Type: Int, Num: 42}, {Name: "fault_code", Type: Int}}},
		{Device: "truck-2", Kind: KindTruck, Time: ts, Event: "pickup", Fields: []Field{{Name: "bin", Type: String, Str: `bin "7", \ok`}}},
		{Device: "bin-1", Kind: KindBin, Time: ts, Event: "fire_alarm"},
	}
	var buf []byte
	for i := range in {
		buf = AppendLine(buf, &in[i])
	}
	out, err := ParseLines(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i].Fields == nil {
			in[i].Fields = nil
		}
		if !reflect.DeepEqual(in[i].Time.UnixNano(), out[i].Time.UnixNano()) {
			t.Errorf("%d: time", i)
		}
		out[i].Time = in[i].Time
		if !reflect.DeepEqual(in[i], out[i]) {
			t.Errorf("%d:\n got %+v\nwant %+v\nline %s", i, out[i], in[i], buf)
		}
	}
}
