package scenario

import (
	"math"
	"sort"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// Truck injections.
const (
	injFarmDump     = "farm_dump"
	injRoadDump     = "road_dump"
	injWrongSite    = "wrong_site"
	injSpill        = "spill"
	injOverload     = "overload"
	injMixed        = "mixed"
	injMissed       = "missed"
	injOffline      = "offline"
	injSpillNear    = "spill_near"
	injOverloadNear = "overload_near"
)

func (g *gen) devicesOf(kind string) []*fleet.Device {
	var out []*fleet.Device
	for i := range g.cfg.Devices {
		if g.cfg.Devices[i].Kind == kind {
			out = append(out, &g.cfg.Devices[i])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (g *gen) shuffle(ds []*fleet.Device) {
	g.rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
}

func (g *gen) trucks() {
	var kitchen, routed, idle []*fleet.Device
	for _, d := range g.devicesOf("truck") {
		switch rt, _, _ := g.truckRoute(d.ID); {
		case rt == nil:
			idle = append(idle, d)
		case d.Category == "kitchen":
			kitchen = append(kitchen, d)
		default:
			routed = append(routed, d)
		}
	}
	g.shuffle(kitchen)
	g.shuffle(routed)
	inj := map[string]string{}
	for i, name := range []string{injFarmDump, injRoadDump, injWrongSite, injSpill} {
		if i < len(kitchen) {
			inj[kitchen[i].ID] = name
		}
	}
	var rest []*fleet.Device
	for i, d := range routed {
		switch i {
		case 0:
			inj[d.ID] = injMixed
		case 1:
			inj[d.ID] = injMissed
		default:
			rest = append(rest, d)
		}
	}
	rest = append(rest, idle...)
	g.shuffle(rest)
	for i, name := range []string{injOverload, injOffline, injSpillNear, injOverloadNear} {
		if i < len(rest) {
			inj[rest[i].ID] = name
		}
	}
	gaps := g.assignGaps(inj)
	for _, d := range g.devicesOf("truck") {
		g.truckDay(d, inj[d.ID], gaps[d.ID])
	}
}

// assignGaps gives the tracking-gap injections to trucks whose own
// injection leaves room for one, where the city has places that fit.
func (g *gen) assignGaps(inj map[string]string) map[string]string {
	out := map[string]string{}
	trucks := g.devicesOf("truck")
	g.shuffle(trucks)
	for _, name := range []string{injGapFarm, injGapLoad, injGap} {
		for _, d := range trucks {
			if _, taken := out[d.ID]; taken {
				continue
			}
			switch inj[d.ID] {
			case injOffline, injFarmDump, injRoadDump, injWrongSite, injOverload, injOverloadNear:
				continue
			}
			if name != injGap && len(g.gapPlaces(d.Category, name == injGapFarm)) == 0 {
				continue
			}
			out[d.ID] = name
			break
		}
	}
	return out
}

// truckRoute is the truck's collection route that runs on the day.
func (g *gen) truckRoute(id string) (*fleet.CollectionRoute, time.Time, time.Time) {
	for _, r := range g.cfg.Map.RoutesOfTruck(id) {
		a, b, ok := r.Schedule.Next(g.from)
		if ok && !b.After(g.to) {
			return r, a, b
		}
	}
	return nil, time.Time{}, time.Time{}
}

// freePoint finds a point about distM from p that lies in no site and in a
// district of the city.
func (g *gen) freePoint(p point, distM float64) point {
	for i := 0; i < 200; i++ {
		a := g.rng.Float64() * 2 * math.Pi
		q := point{p.Lat + distM*math.Cos(a)/110540, p.Lon + distM*math.Sin(a)/(111320*math.Cos(p.Lat*math.Pi/180))}
		loc := g.cfg.Map.Locate(q.Lat, q.Lon)
		if loc.District != "" && len(loc.Sites) == 0 {
			return q
		}
	}
	return p
}

func binKG(category string, r float64) float64 {
	switch category {
	case "kitchen":
		return 80 + 60*r
	case "recyclable":
		return 20 + 30*r
	case "hazardous":
		return 5 + 10*r
	default:
		return 40 + 50*r
	}
}

func (g *gen) truckDay(d *fleet.Device, inj, gap string) {
	depot := g.siteCenter("depot")
	if depot == (point{}) {
		depot = point{39.907, 116.353}
	}
	v := &vehicle{g: g, id: d.ID, rng: g.rngFor(d.ID), t: g.from, fuel: 60 + 30*g.rngFor(d.ID+"f").Float64()}
	v.pos = jitter(v.rng, depot, 15)
	home := v.pos
	rt, wa, wb := g.truckRoute(d.ID)
	if inj == injOffline {
		v.silentFrom = g.from.Add(18*time.Hour + time.Duration(g.rng.IntN(60))*time.Minute)
		v.silentTo = v.silentFrom.Add(100 * time.Minute)
	}
	if rt == nil {
		g.truckErrand(v, d, inj, gap, home)
		return
	}
	v.park(wa.Add(-20 * time.Minute))
	v.ignition = true
	bins := rt.Bins
	if inj == injMissed && len(bins) > 2 {
		bins = bins[:len(bins)-2]
		g.expect(Expected{Type: "missed_route", Device: d.ID, Start: wa, End: wb, Place: rt.ID, Severity: "major",
			Note: "the last two bins of the route were skipped"})
	}
	kmh := g.routeSpeed(home, bins, wa, wb)
	lights := driveOpts{kmh: kmh, lights: true}
	for i, b := range bins {
		g.pickBin(v, d, b, binKG(d.Category, v.rng.Float64()), wa, lights)
		if inj == injMixed && i == 2 {
			if other := g.otherCategoryBin(d.Category, b); other != "" {
				g.busy[other] = true
				g.pickBin(v, d, other, binKG(d.Category, v.rng.Float64()), wa, lights)
			}
		}
	}
	g.loadedDrive(v, d, inj)
	if gap != "" {
		g.gapTrip(v, d, gap)
	}
	if inj == injFarmDump || inj == injRoadDump {
		g.dump(v, d, inj, lights)
	}
	g.unload(v, d, inj, lights)
	v.drive(home, lights)
	v.ignition = false
	v.park(g.to)
	g.truckOffline(v, inj)
}

// truckErrand drives the day of a truck without a collection route: one
// errand in the afternoon (bulky waste), to be unloaded at a site.
func (g *gen) truckErrand(v *vehicle, d *fleet.Device, inj, gap string, home point) {
	// No collection today: an errand in the afternoon (bulky waste).
	v.park(g.at(12, 14))
	v.ignition = true
	v.stop(6, nil)
	v.load = 1500 + 1000*v.rng.Float64()
	v.stop(6, nil)
	g.loadedDrive(v, d, inj)
	if gap != "" {
		g.gapTrip(v, d, gap)
	}
	g.unload(v, d, inj, driveOpts{kmh: 35, lights: true})
	v.drive(home, driveOpts{kmh: 35, lights: true})
	v.ignition = false
	v.park(g.to)
	g.truckOffline(v, inj)
}

// routeSpeed is a speed in km/h fast enough to drive from home along bins
// and finish well inside the route's window from wa to wb.
func (g *gen) routeSpeed(home point, bins []string, wa, wb time.Time) float64 {
	routeM, prev := 0.0, home
	for _, b := range bins {
		if bd := g.devs[b]; bd != nil && bd.Lat != nil {
			p := point{*bd.Lat, *bd.Lon}
			routeM += dist(prev, p)
			prev = p
		}
	}
	avail := wb.Sub(wa).Seconds()*0.75 - float64(len(bins))*80
	return clamp(routeM/math.Max(avail, 600)*3.6*1.3, 30, 60)
}

// pickBin drives v to bin and empties it into the truck (kg), no earlier
// than the route's window opens at wa; a bin of another category than the
// truck's is a mixed collection.
func (g *gen) pickBin(v *vehicle, d *fleet.Device, bin string, kg float64, wa time.Time, lights driveOpts) {
	bd := g.devs[bin]
	if bd == nil || bd.Lat == nil {
		return
	}
	v.drive(point{*bd.Lat, *bd.Lon}, lights)
	v.stop(3, nil)
	v.park(wa.Add(time.Minute)) // early at the first bin: wait for the window
	v.load += kg
	v.event("pickup", map[string]any{"bin": bin})
	g.pickups[bin] = append(g.pickups[bin], v.t)
	if bd.Category != d.Category {
		g.expect(Expected{Type: "mixed_collection", Device: d.ID, Start: v.t.Add(time.Second), End: v.t.Add(time.Second),
			Place: bin, Lat: v.pos.Lat, Lon: v.pos.Lon, Severity: "major",
			Note: "a " + d.Category + " truck picked up a " + bd.Category + " bin"})
	}
	v.stop(4, nil)
}

// dump drives v to a farm (injFarmDump) or a free roadside point and dumps
// most of its load there.
func (g *gen) dump(v *vehicle, d *fleet.Device, inj string, lights driveOpts) {
	var at point
	place := ""
	sev := "major"
	if inj == injFarmDump {
		for _, s := range g.cfg.Map.Sites {
			if s.Kind == "farm" {
				at, place, sev = g.siteCenter(s.ID), s.ID, "critical"
				break
			}
		}
	}
	if place == "" {
		at = g.freePoint(v.pos, 1500)
	}
	v.drive(at, lights)
	v.stop(6, nil)
	start := v.t.Add(-step)
	drop := v.load * 0.65
	v.stop(12, func(int) { v.load -= drop / 12 })
	v.stop(18, nil)
	g.expect(Expected{Type: "illegal_dumping", Device: d.ID, Start: start, End: start.Add(2 * time.Minute), Place: place,
		Lat: at.Lat, Lon: at.Lon, Severity: sev, Note: "dumped 65 % of the load"})
}

func (g *gen) truckOffline(v *vehicle, inj string) {
	if inj != injOffline || v.silentFrom.IsZero() {
		return
	}
	last := v.silentFrom.Add(-step)
	g.expect(Expected{Type: "device_offline", Device: v.id, Start: last, End: last.Add(30 * time.Second), Severity: "minor",
		Note: "silent for 100 minutes"})
}

// otherCategoryBin returns a bin near bin whose category differs from c.
func (g *gen) otherCategoryBin(c, bin string) string {
	b := g.devs[bin]
	best, bestD := "", math.MaxFloat64
	for _, d := range g.devicesOf("bin") {
		if d.Category == c || d.Lat == nil {
			continue
		}
		if x := dist(point{*b.Lat, *b.Lon}, point{*d.Lat, *d.Lon}); x < bestD {
			best, bestD = d.ID, x
		}
	}
	return best
}

func (g *gen) onRoute(bin string) bool {
	for _, r := range g.cfg.Map.CollectionRoutes {
		for _, b := range r.Bins {
			if b == bin {
				return true
			}
		}
	}
	return false
}

// loadedDrive drives the loaded truck away, with the overload and spillage
// injections and their near misses.
func (g *gen) loadedDrive(v *vehicle, d *fleet.Device, inj string) {
	if inj == injOverload || inj == injOverloadNear {
		f := 1.15
		if inj == injOverloadNear {
			f = 1.02
		}
		v.stop(3, nil)
		v.load = d.CapacityKG * f
		v.stop(6, nil)
		w := g.freePoint(v.pos, 3000)
		start := v.t
		v.drive(w, driveOpts{kmh: 30})
		if inj == injOverload {
			g.expect(Expected{Type: "overload", Device: d.ID, Start: start, End: start.Add(2 * time.Minute), Severity: "major",
				Note: "loaded to 115 % of capacity and driven"})
		} else {
			g.near = append(g.near, d.ID+": driven at 102 % of capacity")
		}
	}
	if inj == injSpill || inj == injSpillNear {
		w := g.freePoint(v.pos, 4500)
		loss := 150.0
		if inj == injSpillNear {
			loss = 25
		}
		start := v.t
		v.drive(w, driveOpts{kmh: 30, lossKG: loss, lossOverM: 3000})
		if inj == injSpill {
			g.expect(Expected{Type: "spillage", Device: d.ID, Start: start, End: v.t, Severity: "major",
				Note: "lost 150 kg over 3 km"})
		} else {
			g.near = append(g.near, d.ID+": lost 25 kg over 3 km (under the spillage limit)")
		}
	}
}

// unload drives to the site that takes the truck's category (a landfill for
// the wrong-site injection) and empties the truck with the tipper on.
func (g *gen) unload(v *vehicle, d *fleet.Device, inj string, lights driveOpts) {
	site := g.siteFor(d.Category)
	if inj == injWrongSite {
		for _, s := range g.cfg.Map.Sites {
			if s.Kind == "landfill" && !s.AcceptsCategory(d.Category) {
				site = s.ID
				break
			}
		}
	}
	if site != "" {
		at := jitter(v.rng, g.siteCenter(site), 10)
		v.drive(at, lights)
		v.stop(6, nil)
		v.event("unload_start", nil)
		v.tipper = true
		start := v.t.Add(-step)
		drop := v.load
		v.stop(12, func(int) { v.load -= drop / 12 })
		v.load = 0
		v.stop(6, nil)
		v.tipper = false
		v.event("unload_end", nil)
		v.stop(6, nil)
		if inj == injWrongSite {
			g.expect(Expected{Type: "wrong_site", Device: d.ID, Start: start, End: start.Add(2 * time.Minute), Place: site,
				Lat: at.Lat, Lon: at.Lon, Severity: "major", Note: "kitchen waste unloaded at the landfill"})
		} else {
			g.near = append(g.near, d.ID+": legal unload with the tipper on at "+site)
		}
	}
}
