package violations

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// sweeperState holds the sweeper detectors: missed_route (coverage of a
// sweeping route at the end of its window) and sweeping_quality (the share
// of the distance driven along the route with the brush off or too fast).
type sweeperState struct {
	Routes map[string]*sweepRun `json:",omitempty"`
	// Fix is the last position the GPS filters accepted.
	Fix fixPoint `json:",omitempty"`
	// Gap watches for tracking gaps.
	Gap gapWatch
}

// sweepRun is one occurrence of a sweeping route's window and the track
// driven in it.
type sweepRun struct {
	Start, End time.Time
	// Track is thinned to one point a few metres (track.go); Samples
	// counts the readings in the window.
	Track   []fleet.TrackPoint `json:",omitempty"`
	Samples int                `json:",omitempty"`
}

// maxTrack bounds a window's track: a day at one sample a second.
const maxTrack = 86400

func (s *sweeperState) handle(e *env, r *telemetry.Reading) {
	if r.Event != "" {
		return
	}
	if s.Gap.Last.T.Equal(r.Time) {
		return // the same reading again (a QoS 1 resend)
	}
	s.Gap.step(e, r, math.NaN())
	lat, lon, ok := position(r)
	if !ok {
		return
	}
	s.Fix = fixPoint{T: r.Time, Lat: lat, Lon: lon}
	speed, _ := r.Num("speed_kmh")
	brush, _ := r.Num("brush_on")
	p := fleet.TrackPoint{Time: r.Time, Lat: lat, Lon: lon, SpeedKmh: speed, BrushOn: brush != 0}
	for _, rt := range e.sweep {
		run := s.Routes[rt.ID]
		if run == nil || r.Time.Before(run.Start) || !r.Time.Before(run.End) || len(run.Track) >= maxTrack {
			continue
		}
		covMax := rt.MaxSpeedKmh
		if e.cfg != nil && e.cfg.Coverage.MaxSpeedKmh != 0 {
			covMax = e.cfg.Coverage.MaxSpeedKmh
		}
		run.Track = appendTrack(run.Track, p, rt.MaxSpeedKmh, covMax)
		run.Samples++
	}
}

func (s *sweeperState) tick(e *env, now time.Time) {
	s.Gap.tick(e, now)
	if e.cfg == nil || e.cfg.Map == nil {
		return
	}
	for _, rt := range e.sweep {
		if s.Routes == nil {
			s.Routes = map[string]*sweepRun{}
		}
		run := s.Routes[rt.ID]
		for i := 0; i < 32; i++ {
			if run == nil {
				a, b, ok := rt.Schedule.Next(now)
				if !ok {
					break
				}
				run = &sweepRun{Start: a, End: b}
				s.Routes[rt.ID] = run
			}
			if now.Before(run.End) {
				break
			}
			if !run.Start.Before(e.since()) {
				judgeSweep(e, rt, run)
			}
			a, b, ok := rt.Schedule.Next(run.End)
			if !ok {
				delete(s.Routes, rt.ID)
				break
			}
			run = &sweepRun{Start: a, End: b}
			s.Routes[rt.ID] = run
		}
	}
}

func judgeSweep(e *env, rt *fleet.SweepingRoute, run *sweepRun) {
	opts := e.cfg.Coverage
	cov := rt.Coverage(run.Track, opts)
	onM, badM, brushOffM, overSpeedM := alongRoute(rt, run.Track, opts.ToleranceM)
	district := ""
	if c := rt.Line.Bound().Center(); len(rt.Line) > 0 {
		district = e.locate(c.Lat(), c.Lon()).District
	}
	e.report(CoverageReport{Route: rt.ID, Device: e.state.ID, Contractor: rt.Contractor, District: district,
		Start: run.Start, End: run.End, Fraction: cov.Fraction, LengthM: cov.LengthM, CoveredM: cov.CoveredM,
		BrushOffM: brushOffM, OverSpeedM: overSpeedM})
	if !e.dc.MissedRoute.Disabled && cov.Fraction < e.dc.MissedRoute.MinCoverage {
		geo, _ := json.Marshal(cov.UncoveredGeoJSON())
		v := Violation{Key: makeKey(MissedRoute, rt.ID, run.Start), Type: MissedRoute, Severity: Major,
			Start: run.Start, End: run.End, Route: rt.ID, Place: rt.ID, Geometry: geo,
			Summary: fmt.Sprintf("%s covered %.0f %% of %s (%.1f of %.1f km), under %.0f %%", e.state.ID,
				cov.Fraction*100, rt.ID, cov.CoveredM/1000, cov.LengthM/1000, e.dc.MissedRoute.MinCoverage*100),
			Evidence: []Evidence{{Time: run.End, Fields: map[string]float64{"coverage": round3(cov.Fraction),
				"covered_m": math.Round(cov.CoveredM), "length_m": math.Round(cov.LengthM), "samples": float64(run.Samples)},
				Note: "coverage at the end of the window"}},
		}
		if len(cov.Uncovered) > 0 && len(cov.Uncovered[0]) > 0 {
			p := cov.Uncovered[0][0]
			v.Lat, v.Lon, v.HasPos = p[1], p[0], true
		}
		e.emit(v)
	}
	q := &e.dc.SweepingQuality
	if !q.Disabled && onM > 0 && badM/onM > q.MaxBadFraction {
		v := Violation{Key: makeKey(SweepingQuality, rt.ID, run.Start), Type: SweepingQuality, Severity: Minor,
			Start: run.Start, End: run.End, Route: rt.ID, Place: rt.ID,
			Summary: fmt.Sprintf("%s drove %.0f %% of %.1f km along %s with the brush off or over %.0f km/h", e.state.ID,
				badM/onM*100, onM/1000, rt.ID, rt.MaxSpeedKmh),
			Evidence: []Evidence{{Time: run.End, Fields: map[string]float64{"on_route_m": math.Round(onM),
				"bad_m": math.Round(badM), "bad_fraction": round3(badM / onM)}, Note: "distance along the route"}},
		}
		e.emit(v)
	}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// alongRoute measures the distance the track drove along the route (each
// step's midpoint within tolerance of it) and how much of that was driven
// with the brush off or faster than the route's sweeping speed. Steps over a
// gap (a minute, or 200 m) are not counted.
func alongRoute(rt *fleet.SweepingRoute, track []fleet.TrackPoint, tolM float64) (onM, badM, brushOffM, overSpeedM float64) {
	if tolM <= 0 {
		tolM = 15
	}
	c := rt.Line.Bound().Center()
	kx := 111320 * math.Cos(c.Lat()*math.Pi/180)
	const ky = 110540.0
	xy := func(lon, lat float64) (float64, float64) { return (lon - c.Lon()) * kx, (lat - c.Lat()) * ky }
	type seg struct{ ax, ay, bx, by float64 }
	var segs []seg
	for _, ls := range rt.Line {
		for i := 1; i < len(ls); i++ {
			ax, ay := xy(ls[i-1][0], ls[i-1][1])
			bx, by := xy(ls[i][0], ls[i][1])
			segs = append(segs, seg{ax, ay, bx, by})
		}
	}
	near := func(px, py float64) bool {
		for _, s := range segs {
			dx, dy := s.bx-s.ax, s.by-s.ay
			l2 := dx*dx + dy*dy
			t := 0.0
			if l2 > 0 {
				t = math.Max(0, math.Min(1, ((px-s.ax)*dx+(py-s.ay)*dy)/l2))
			}
			if math.Hypot(px-(s.ax+t*dx), py-(s.ay+t*dy)) <= tolM {
				return true
			}
		}
		return false
	}
	for i := 0; i+1 < len(track); i++ {
		a, b := track[i], track[i+1]
		if b.Time.Sub(a.Time) > time.Minute || a.SpeedKmh < 0.5 {
			continue // a gap, or GPS jitter around a parked sweeper
		}
		ax, ay := xy(a.Lon, a.Lat)
		bx, by := xy(b.Lon, b.Lat)
		d := math.Hypot(bx-ax, by-ay)
		if d > 200 || !near((ax+bx)/2, (ay+by)/2) {
			continue
		}
		onM += d
		fast := rt.MaxSpeedKmh > 0 && a.SpeedKmh > rt.MaxSpeedKmh
		if !a.BrushOn {
			brushOffM += d
		}
		if fast {
			overSpeedM += d
		}
		if !a.BrushOn || fast {
			badM += d
		}
	}
	return onM, badM, brushOffM, overSpeedM
}
