package scenario

import (
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// Tracking-gap injections: a truck's tracker cut for gapSilence mid-trip.
const (
	injGap     = "gap"      // back with the same load: tracking_gap only
	injGapLoad = "gap_load" // back with 1,200 kg less, no site within reach: unaccounted_load, major
	injGapFarm = "gap_farm" // the same near a farm: unaccounted_load, critical
)

// gapSilence is how long the tracker is silent. Within it a truck reaches
// 10 km of detour at the detectors' 30 km/h with 10 min left to unload.
const gapSilence = 30 * time.Minute

// gapReachM is that detour; gapMarginM keeps the injected places clear of
// its edge, so the truth does not hang on the detectors' geometry.
const (
	gapReachM  = 10000.0
	gapMarginM = 3000.0
)

// gapTrip drives the loaded truck to the gap's place, cuts its tracker for
// gapSilence while it drives on (and loses part of its load for the load
// injections), and shows it parked where it came back.
func (g *gen) gapTrip(v *vehicle, d *fleet.Device, inj string) {
	a, b, ok := g.gapEnds(v, d, inj)
	if !ok {
		return
	}
	lights := driveOpts{kmh: 35, lights: true}
	v.drive(a, lights)
	if inj != injGap {
		v.stop(6, nil)
		v.load += 1500 // bulky waste picked up by hand: no pickup event
		v.stop(6, nil)
	}
	last := v.t.Add(-step)
	v.silentFrom, v.silentTo = v.t, v.t.Add(gapSilence)
	v.drive(b, driveOpts{kmh: 20})
	if inj != injGap {
		v.load -= 1200
	}
	v.park(v.silentTo)
	v.stop(30, nil) // back, parked with the ignition on
	g.expect(Expected{Type: "tracking_gap", Device: d.ID, Start: last, End: v.silentTo, Severity: "major",
		Note: "tracker silent for 30 min mid-trip"})
	g.expect(Expected{Type: "device_offline", Device: d.ID, Start: last, End: last.Add(30 * time.Second), Severity: "minor",
		Note: "tracker silent for 30 min mid-trip"})
	switch inj {
	case injGapLoad:
		g.expect(Expected{Type: "unaccounted_load", Device: d.ID, Start: last, End: v.silentTo, Severity: "major",
			Lat: a.Lat, Lon: a.Lon, Note: "back from a 30 min silence with 1,200 kg less, no site within reach"})
	case injGapFarm:
		g.expect(Expected{Type: "unaccounted_load", Device: d.ID, Start: last, End: v.silentTo, Severity: "critical",
			Lat: a.Lat, Lon: a.Lon, Note: "back from a 30 min silence with 1,200 kg less, near a farm"})
	default:
		g.near = append(g.near, d.ID+": tracker silent for 30 min, back with the same load")
	}
}

// gapEnds picks the two ends of a gap: for the load injections, places from
// which no site accepting the truck's category is within reach, and a farm
// is (gap_farm) or is not (gap_load).
func (g *gen) gapEnds(v *vehicle, d *fleet.Device, inj string) (point, point, bool) {
	if inj == injGap {
		a := g.freePoint(v.pos, 2000)
		return a, g.freePoint(a, 1500), true
	}
	cands := g.gapPlaces(d.Category, inj == injGapFarm)
	if len(cands) == 0 {
		return point{}, point{}, false
	}
	c := cands[g.rng.IntN(len(cands))]
	return c[0], c[1], true
}

// gapPlaces lists pairs of places 1.2 km apart, in the city and in no site,
// from which no site accepting category is within reach, and a farm is (or
// is not), with a margin on both sides of the reach.
func (g *gen) gapPlaces(category string, nearFarm bool) [][2]point {
	reach := func(p, q point, s *fleet.Site) float64 {
		c := g.siteCenter(s.ID)
		return dist(p, c) + dist(q, c)
	}
	var cands [][2]point
	for lat := 39.86; lat <= 39.99; lat += 0.004 {
		for lon := 116.31; lon <= 116.49; lon += 0.004 {
			a := point{lat, lon}
			b := point{lat, lon + 1200/(111320*0.766)}
			if !g.inCity(a) || !g.inCity(b) {
				continue
			}
			good, farm := true, false
			for i := range g.cfg.Map.Sites {
				s := &g.cfg.Map.Sites[i]
				r := reach(a, b, s)
				switch {
				case s.Kind == "farm" && r < gapReachM-gapMarginM:
					farm = true
				case s.Kind == "farm" && r < gapReachM+gapMarginM:
					good = false // on the edge of reach
				case s.Kind != "farm" && s.AcceptsCategory(category) && r < gapReachM+gapMarginM:
					good = false
				}
			}
			if good && farm == nearFarm {
				cands = append(cands, [2]point{a, b})
			}
		}
	}
	return cands
}

// inCity reports whether p lies in a district and in no site.
func (g *gen) inCity(p point) bool {
	loc := g.cfg.Map.Locate(p.Lat, p.Lon)
	return loc.District != "" && len(loc.Sites) == 0
}
