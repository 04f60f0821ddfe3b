package violations_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// cut removes the readings from from (included) to to (excluded): a tracker
// without power.
func cut(rs []telemetry.Reading, from, to time.Time) []telemetry.Reading {
	var out []telemetry.Reading
	for _, r := range rs {
		if r.Time.Before(from) || !r.Time.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// ignitionOff sets the ignition off on the readings from from to to.
func ignitionOff(rs []telemetry.Reading, from, to time.Time) []telemetry.Reading {
	for i := range rs {
		if !rs[i].Time.Before(from) && rs[i].Time.Before(to) {
			rs[i].SetBool("ignition", false)
		}
	}
	return rs
}

// gapTrip drives dev loaded with load kg from a, goes silent at 08:10 for
// silence, and comes back at b with drop kg less, parked (or driving).
func gapTrip(dev string, a, b [2]float64, load, drop float64, silence time.Duration, parked bool) []telemetry.Reading {
	speed := 0.0
	if !parked {
		speed = 30
	}
	rs, _ := track(dev, telemetry.KindTruck, at(8, 0), 11,
		leg{dur: 10 * time.Minute, speed: 30, from: moveBy(a, -4000, 0), to: a, load0: load, load1: load},
		leg{dur: silence, speed: 30, from: a, to: b, load0: load, load1: load - drop},
		leg{dur: 15 * time.Minute, speed: speed, from: b, to: moveBy(b, speed*250, 0), load0: load - drop, load1: load - drop})
	return cut(rs, at(8, 10), at(8, 10).Add(silence))
}

func TestTrackingGap(t *testing.T) {
	dc := violations.DefaultConfig()
	central := [2]float64{39.92, 116.42}   // kw-plant and both farms out of reach in 40 min
	nearFarm := [2]float64{39.874, 116.49} // 2 km north of farm-south
	nearPlant := [2]float64{39.885, 116.313}
	lunch := gapTrip("truck-01", central, central, 3000, 0, 40*time.Minute, true)
	lunch = ignitionOff(lunch, at(8, 9), at(9, 0))
	cases := []struct {
		name      string
		device    string
		rs        []telemetry.Reading
		gaps      int
		unacc     int
		severity  string
		site      string
		noDumping bool
	}{
		{"silent 40 min, back parked with 1,500 kg less", "truck-01",
			gapTrip("truck-01", central, moveBy(central, 3000, 0), 6000, 1500, 40*time.Minute, true), 1, 1, violations.Major, "", true},
		{"silent 40 min, back driving with 1,500 kg less", "truck-01",
			gapTrip("truck-01", central, moveBy(central, 3000, 0), 6000, 1500, 40*time.Minute, false), 1, 1, violations.Major, "", true},
		{"a farm within reach: critical", "truck-01",
			gapTrip("truck-01", nearFarm, moveBy(nearFarm, 0, 500), 6000, 1500, 40*time.Minute, true), 1, 1, violations.Critical, "farm-south", true},
		{"near: the plant within reach", "truck-01",
			gapTrip("truck-01", nearPlant, moveBy(nearPlant, 500, 0), 6000, 5000, 40*time.Minute, true), 1, 0, "", "", true},
		{"near: the same load after the gap", "truck-01",
			gapTrip("truck-01", central, moveBy(central, 3000, 0), 6000, 100, 40*time.Minute, true), 1, 0, "", "", true},
		{"near: silent 8 min", "truck-01",
			gapTrip("truck-01", central, moveBy(central, 1000, 0), 6000, 1500, 8*time.Minute, true), 0, 0, "", "", true},
		{"near: parked with the ignition off", "truck-01", lunch, 0, 0, "", "", true},
		{"recyclables: the recycling centre is a site of its own", "truck-05",
			gapTrip("truck-05", [2]float64{39.905, 116.45}, [2]float64{39.905, 116.46}, 4000, 1500, 40*time.Minute, true), 1, 0, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			all := run(t, dc, c.rs, at(10, 0), c.device)
			gaps := opened(all, violations.TrackingGap)
			if len(gaps) != c.gaps {
				t.Fatalf("got %d tracking_gap, want %d: %+v", len(gaps), c.gaps, gaps)
			}
			if c.gaps == 1 {
				g := gaps[0]
				if !g.Start.Equal(at(8, 10).Add(-10*time.Second)) || g.Severity != violations.Major || len(g.Evidence) < 3 {
					t.Errorf("gap: got start %s severity %s evidence %+v", g.Start, g.Severity, g.Evidence)
				}
				if g.District == "" || !g.HasPos {
					t.Errorf("gap without a place: %+v", g)
				}
			}
			un := opened(all, violations.UnaccountedLoad)
			if len(un) != c.unacc {
				t.Fatalf("got %d unaccounted_load, want %d: %+v", len(un), c.unacc, un)
			}
			if c.unacc == 1 {
				u := un[0]
				if u.Severity != c.severity || u.Site != c.site {
					t.Errorf("got severity %s site %q, want %s %q", u.Severity, u.Site, c.severity, c.site)
				}
				if !strings.Contains(u.Summary, "kg less") {
					t.Errorf("summary %q", u.Summary)
				}
			}
			if c.noDumping {
				for _, typ := range []string{violations.IllegalDumping, violations.WrongSite, violations.Spillage} {
					if got := opened(all, typ); len(got) != 0 {
						t.Errorf("%s across the gap: %+v", typ, got)
					}
				}
			}
		})
	}
}

func TestSweeperTrackingGap(t *testing.T) {
	dc := violations.DefaultConfig()
	a := [2]float64{39.93, 116.40}
	rs, _ := track("sweeper-01", telemetry.KindSweeper, at(8, 0), 3,
		leg{dur: 40 * time.Minute, speed: 8, from: a, to: moveBy(a, 5000, 0), brush: true})
	cases := []struct {
		name string
		rs   []telemetry.Reading
		want int
	}{
		{"silent 15 min while sweeping", cut(rs, at(8, 10), at(8, 25)), 1},
		{"near: silent 5 min", cut(rs, at(8, 10), at(8, 15)), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := opened(run(t, dc, c.rs, at(9, 0), "sweeper-01"), violations.TrackingGap)
			if len(got) != c.want {
				t.Fatalf("got %d, want %d: %+v", len(got), c.want, got)
			}
		})
	}
}
