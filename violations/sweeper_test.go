package violations_test

import (
	"math"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// sweep drives sweeper-04 along sweep-04 from 05:35 at 7 km/h, sampling
// every 10 s: frac of the route with the brush on except the stretch
// [offFrom, offTo) of the distance, slowing to 1 km/h at corners, then back
// over back of the route with the brush up.
func sweep(t *testing.T, frac, offFrom, offTo, back float64) []telemetry.Reading {
	cfg := loadDemo(t)
	rt, _ := cfg.Map.SweepingRoute("sweep-04")
	line := rt.Line[0]
	var rs []telemetry.Reading
	tm := at(5, 35)
	pos := [2]float64{line[0].Lat(), line[0].Lon()}
	done := 0.0
	emit := func(speed float64, brush bool) {
		r := rd("sweeper-04", telemetry.KindSweeper, tm, map[string]float64{"lat": pos[0] + 0.00001*math.Sin(float64(len(rs))),
			"lon": pos[1] + 0.00001*math.Cos(float64(len(rs))), "speed_kmh": speed, "hdop": 1})
		r.SetBool("brush_on", brush)
		rs = append(rs, r)
		tm = tm.Add(10 * time.Second)
	}
	walk := func(pts [][2]float64, limit float64, brushed func(d float64) bool) {
		for k := 1; k < len(pts); k++ {
			a, b := pts[k-1], pts[k]
			seg := fleet.DistanceM(a[0], a[1], b[0], b[1])
			for s := 0.0; s < seg; {
				if done >= limit {
					return
				}
				speed := 7.0
				if seg-s < 15 {
					speed = 1 // slowing at the crossing
				}
				s = math.Min(seg, s+speed/3.6*10)
				done += speed / 3.6 * 10
				f := s / seg
				pos = [2]float64{a[0] + (b[0]-a[0])*f, a[1] + (b[1]-a[1])*f}
				emit(speed, brushed(done))
			}
		}
	}
	var pts [][2]float64
	for _, p := range line {
		pts = append(pts, [2]float64{p.Lat(), p.Lon()})
	}
	walk(pts, frac*rt.LengthM, func(d float64) bool { return d < offFrom*rt.LengthM || d >= offTo*rt.LengthM })
	if back > 0 {
		var rev [][2]float64
		for i := len(pts) - 1; i >= 0; i-- {
			rev = append(rev, pts[i])
		}
		done = 0
		walk(rev, back*rt.LengthM, func(float64) bool { return false })
	}
	for tm.Before(at(8, 40)) {
		emit(0, false)
	}
	return rs
}

func TestSweeping(t *testing.T) {
	dc := violations.DefaultConfig()
	cases := []struct {
		name            string
		rs              []telemetry.Reading
		missed, quality int
	}{
		{"whole route, slowing at every crossing", sweep(t, 1, 0, 0, 0), 0, 0},
		{"half the route", sweep(t, 0.5, 0, 0, 0), 1, 0},
		{"whole route, then 40 % again with the brush up", sweep(t, 1, 0, 0, 0.4), 0, 1},
		{"near: brush up for 4 % of the route", sweep(t, 1, 0.3, 0.34, 0), 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			all := run(t, dc, c.rs, at(9, 0), "sweeper-04")
			m, q := opened(all, violations.MissedRoute), opened(all, violations.SweepingQuality)
			if len(m) != c.missed || len(q) != c.quality {
				t.Fatalf("got %d missed_route and %d sweeping_quality, want %d and %d: %+v", len(m), len(q), c.missed, c.quality, all)
			}
			for _, v := range append(m, q...) {
				if v.Route != "sweep-04" || !v.Start.Equal(at(5, 30)) || !v.End.Equal(at(8, 30)) {
					t.Errorf("route %q span %s-%s", v.Route, v.Start, v.End)
				}
			}
			if len(m) == 1 && len(m[0].Geometry) == 0 {
				t.Errorf("no uncovered geometry")
			}
		})
	}
}
