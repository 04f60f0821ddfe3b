package violations_test

import (
	"testing"
	"time"

	"github.com/sanigate/sanigate/violations"
)

func TestAppendLine(t *testing.T) {
	v := violations.Violation{Key: "illegal_dumping/truck-01/20260302T000500Z", Type: violations.IllegalDumping,
		Severity: violations.Critical, Device: "truck-01", Kind: "truck", Start: time.Unix(1772409900, 0),
		End: time.Unix(1772410020, 0), Lat: 39.856, Lon: 116.49, HasPos: true, District: "south",
		Contractor: "green clean", Category: "kitchen", Site: "farm-south",
		Summary: `truck-01 dropped 1500 kg "at" farm-south, a\farm`}
	got := string(violations.AppendLine(nil, &v))
	want := `violation,category=kitchen,contractor=green\ clean,device=truck-01,district=south,kind=truck,severity=critical,` +
		`site=farm-south,state=raised,type=illegal_dumping key="illegal_dumping/truck-01/20260302T000500Z",summary="truck-01 dropped 1500 kg \"at\" farm-south, a\\farm",` +
		`duration_s=120,lat=39.856,lon=116.49,resolved=false,withdrawn=false,count=1i 1772409900000000000` + "\n"
	if got != want {
		t.Errorf("raised:\ngot  %s\nwant %s", got, want)
	}

	// Resolving keeps the raise point (only its resolved field changes) and
	// adds a point of its own, in another series, at the end.
	v = violations.Violation{Key: "k", Type: violations.BinOverflow, Severity: violations.Minor, Device: "bin-04", Kind: "bin",
		Start: time.Unix(100, 0), End: time.Unix(7300, 0), Summary: "fill 95 % for 2h", Resolved: true}
	got = string(violations.AppendLine(nil, &v))
	want = `violation,device=bin-04,kind=bin,severity=minor,state=resolved,type=bin_overflow key="k",summary="fill 95 % for 2h",duration_s=7200,resolved=true 7300000000000` + "\n" +
		`violation,device=bin-04,kind=bin,severity=minor,state=raised,type=bin_overflow resolved=true 100000000000` + "\n"
	if got != want {
		t.Errorf("resolved:\ngot  %s\nwant %s", got, want)
	}
}

func TestAppendWithdrawnLine(t *testing.T) {
	v := violations.Violation{Key: "k", Type: violations.TrackingGap, Severity: violations.Major, Device: "truck-01", Kind: "truck",
		Start: time.Unix(100, 0), End: time.Unix(1300, 0), Summary: "silent 20 min"}
	got := string(violations.AppendWithdrawnLine(nil, &v, "no longer supported"))
	want := `violation,device=truck-01,kind=truck,severity=major,state=withdrawn,type=tracking_gap key="k",summary="no longer supported",withdrawn=true 100000000000` + "\n" +
		`violation,device=truck-01,kind=truck,severity=major,state=raised,type=tracking_gap withdrawn=true 100000000000` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendCoverageLine(t *testing.T) {
	c := violations.CoverageReport{Device: "sweeper-04", Route: "sweep 04", Start: time.Unix(100, 0), Fraction: 0.5, LengthM: 1000, CoveredM: 500}
	got := string(violations.AppendCoverageLine(nil, &c))
	want := `coverage,device=sweeper-04,route=sweep\ 04 fraction=0.5,length_m=1000,covered_m=500,brush_off_m=0,over_speed_m=0 100000000000` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
