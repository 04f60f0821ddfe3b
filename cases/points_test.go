package cases

import (
	"strings"
	"testing"
	"time"
)

func TestLineProtocolEscaping(t *testing.T) {
	var b strings.Builder
	writePoint(&b, "case", map[string]string{"unit": "East bureau, team=2", "district": "", "type": "bin_overflow"},
		[]field{{"case_id", `"7"`}, {"elapsed_s", fmtFloat(3)}}, time.Unix(1, 5))
	want := `case,type=bin_overflow,unit=East\ bureau\,\ team\=2 case_id="7",elapsed_s=3.0 1000000005` + "\n"
	if b.String() != want {
		t.Fatalf("got  %q\nwant %q", b.String(), want)
	}
}
