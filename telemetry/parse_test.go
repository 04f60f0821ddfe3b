package telemetry

import (
	"bytes"
	"reflect"
	"strconv"
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

// TestParserMatchesParseLines parses lines with a Parser that keeps its
// strings and field blocks, and checks every reading equals what
// ParseLines makes of the same line, and that growing one reading's fields
// leaves the next one's alone.
func TestParserMatchesParseLines(t *testing.T) {
	ts := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	var lines [][]byte
	for i := range 300 {
		r := Reading{Device: "bin-" + string(rune('a'+i%7)), Kind: KindBin, Time: ts.Add(time.Duration(i) * time.Second),
			District: "south", Contractor: "green clean", Category: "a,b=c"}
		for j := range i % 5 {
			r.SetFloat("f"+string(rune('a'+j)), float64(i*j))
		}
		if i%11 == 0 {
			r.Event, r.Fields = "emptied", nil
		}
		if i%13 == 0 {
			r.SetString("note", `say "x", \ok`)
		}
		if i%17 == 0 {
			for j := range 70 { // more than the parser's share of a block
				r.SetInt("n"+strconv.Itoa(j), int64(j))
			}
		}
		lines = append(lines, AppendLine(nil, &r))
	}
	var p Parser
	var got []Reading
	for _, l := range lines {
		r, err := p.Line(bytes.TrimSuffix(l, []byte{'\n'}))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	for i := range got {
		if len(got[i].Fields) > 0 {
			got[i].Fields = append(got[i].Fields, Field{Name: "extra", Type: Int, Num: -1})
		}
	}
	for i, l := range lines {
		want, err := ParseLines(l)
		if err != nil || len(want) != 1 {
			t.Fatalf("%d: ParseLines = %d readings, %v", i, len(want), err)
		}
		if len(want[0].Fields) > 0 {
			want[0].Fields = append(want[0].Fields, Field{Name: "extra", Type: Int, Num: -1})
		}
		if !reflect.DeepEqual(got[i], want[0]) {
			t.Errorf("%d:\n got %+v\nwant %+v", i, got[i], want[0])
		}
	}
	if _, err := p.Line([]byte("bin,device=x fill_pct=1")); err == nil {
		t.Error("a line without a timestamp parsed")
	}
}
