package cases

import (
	"testing"
	"time"
)

// The case point's shape: the encoder itself is tested in telemetry.
func TestCasePoint(t *testing.T) {
	e := event{action: "filed", at: time.Unix(1, 5),
		c: Case{ID: 7, Type: "bin_overflow", Unit: "East bureau, team=2", FiledAt: time.Unix(0, 5)}}
	got := string(appendCasePoint(nil, e))
	want := `case,action=filed,type=bin_overflow,unit=East\ bureau\,\ team\=2 case_id="7",count=1i,overdue=false,elapsed_s=1 1000000005` + "\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
