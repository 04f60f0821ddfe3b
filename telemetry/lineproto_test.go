package telemetry

import (
	"testing"
	"time"
)

// TestLine is the one test of the gateway's line protocol encoder: every
// writer (readings, violations, coverage, cases) goes through it.
func TestLine(t *testing.T) {
	at := time.Unix(1, 5)
	for _, tc := range []struct {
		name string
		line func(buf []byte) []byte
		want string
	}{
		{"empty tags left out", func(b []byte) []byte {
			l := StartLine(b, "m")
			l.Tag("a", "")
			l.Tag("", "x")
			l.Tag("b", "1")
			l.Int("n", 1)
			return l.End(at)
		}, "m,b=1 n=1i 1000000005\n"},
		{"escaping", func(b []byte) []byte {
			l := StartLine(b, "m x,y=z")
			l.Tag("k ,=", "v ,=\\")
			l.String("s k", `say "hi" \ bye`)
			l.Float("f", 3)
			l.Bool("ok", true)
			return l.End(at)
		}, `m\ x\,y=z,k\ \,\==v\ \,\=\ s\ k="say \"hi\" \\ bye",f=3,ok=true 1000000005` + "\n"},
		{"newlines become spaces", func(b []byte) []byte {
			l := StartLine(b, "m\n")
			l.Tag("k", "a\nb")
			l.String("s", "line one\r\nline two")
			return l.End(at)
		}, `m\ ,k=a\ b s="line one  line two" 1000000005` + "\n"},
		{"appends to what the buffer holds", func(b []byte) []byte {
			b = append(b, "first 1\n"...)
			l := StartLine(b, "m")
			l.Float("f", -0.5)
			return l.End(at)
		}, "first 1\nm f=-0.5 1000000005\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.line(nil)); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// A reading's line parses back to the same reading, and an event without
// fields still gets one.
func TestAppendLineRoundTrip(t *testing.T) {
	r := Reading{Device: "bin-1", Kind: KindBin, Time: time.Unix(100, 0), District: "north west"}
	r.SetFloat("fill_pct", 42.5)
	r.SetBool("lid_open", true)
	got, err := ParseLines(AppendLine(nil, &r))
	if err != nil || len(got) != 1 || got[0].District != "north west" || len(got[0].Fields) != 2 {
		t.Fatalf("got %+v, %v", got, err)
	}
	ev := Reading{Device: "toilet-1", Kind: KindToilet, Event: "help_button", Time: time.Unix(100, 0)}
	if line := string(AppendLine(nil, &ev)); line != "event,device=toilet-1,event=help_button,kind=toilet count=1i 100000000000\n" {
		t.Errorf("event without fields: %q", line)
	}
}
