package scenario

import (
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// sweepSpeed is the sweepers' working speed, under the demo routes' 8 km/h.
const sweepSpeed = 7.0

func (g *gen) sweepers() {
	type job struct {
		d      *fleet.Device
		rt     *fleet.SweepingRoute
		a, b   time.Time
		slack  float64 // window / time needed
		chosen string
	}
	var jobs []*job
	for _, d := range g.devicesOf("sweeper") {
		j := &job{d: d}
		for _, rt := range g.cfg.Map.RoutesOfSweeper(d.ID) {
			a, b, ok := rt.Schedule.Next(g.from)
			if ok && !b.After(g.to) && !a.Before(g.from) {
				j.rt, j.a, j.b = rt, a, b
				need := rt.LengthM / (sweepSpeed / 3.6)
				j.slack = (b.Sub(a) - 15*time.Minute).Seconds() / need
				break
			}
		}
		jobs = append(jobs, j)
	}
	order := make([]*job, len(jobs))
	copy(order, jobs)
	g.rng.Shuffle(len(order), func(i, k int) { order[i], order[k] = order[k], order[i] })
	missed, quality := false, false
	for _, j := range order {
		switch {
		case j.rt == nil:
		case j.slack < 1.02:
			j.chosen = "infeasible"
		case !quality && j.slack >= 1.5:
			j.chosen, quality = "quality", true
		case !missed:
			j.chosen, missed = "missed", true
		}
	}
	gap := ""
	for _, j := range order {
		if j.rt != nil && j.chosen == "" && j.b.Add(time.Hour).Before(g.to) {
			gap = j.d.ID
			break
		}
	}
	for _, j := range jobs {
		g.sweepDay(j.d, j.rt, j.a, j.b, j.chosen, j.d.ID == gap)
	}
}

func (g *gen) sweepDay(d *fleet.Device, rt *fleet.SweepingRoute, a, b time.Time, inj string, gap bool) {
	v := &vehicle{g: g, id: d.ID, sweeper: true, rng: g.rngFor(d.ID), t: g.from, water: 100, fuel: 80}
	if rt == nil || len(rt.Line) == 0 || len(rt.Line[0]) < 2 {
		v.pos = point{39.9, 116.4}
		v.park(g.to)
		return
	}
	first := rt.Line[0][0]
	v.pos = jitter(v.rng, point{first.Lat(), first.Lon()}, 3)
	v.park(a.Add(3 * time.Minute))
	frac := 1.0
	switch inj {
	case "missed":
		frac = 0.6
	case "infeasible":
		frac = 0.7
	}
	target := frac * rt.LengthM
	swept := 0.0
	var path []point
sweep:
	for pi, part := range rt.Line {
		if pi > 0 {
			v.brush = false
			v.drive(point{part[0].Lat(), part[0].Lon()}, driveOpts{kmh: sweepSpeed})
		}
		v.brush = true
		for k := 1; k < len(part); k++ {
			p := point{part[k].Lat(), part[k].Lon()}
			prev := v.pos
			if left := target - swept; dist(prev, p) > left {
				p = lerp(prev, p, left/dist(prev, p))
				v.drive(p, driveOpts{kmh: sweepSpeed})
				path = append(path, p)
				break sweep
			}
			v.drive(p, driveOpts{kmh: sweepSpeed, slowAtEnd: k < len(part)-1})
			swept += dist(prev, p)
			path = append(path, p)
		}
	}
	v.brush = false
	switch inj {
	case "missed", "infeasible":
		g.expect(Expected{Type: "missed_route", Device: d.ID, Start: a, End: b, Place: rt.ID, Severity: "major",
			Note: "swept only part of the route"})
	case "quality":
		// Back along the route with the brush up, for 40 % of its length.
		back := 0.0
		for i := len(path) - 2; i >= 0 && back < 0.4*rt.LengthM; i-- {
			p := path[i]
			if left := 0.4*rt.LengthM - back; dist(v.pos, p) > left {
				p = lerp(v.pos, p, left/dist(v.pos, p))
			}
			back += dist(v.pos, p)
			v.drive(p, driveOpts{kmh: sweepSpeed})
		}
		g.expect(Expected{Type: "sweeping_quality", Device: d.ID, Start: a, End: b, Place: rt.ID, Severity: "minor",
			Note: "drove 40 % of the route again with the brush up"})
	default:
		g.near = append(g.near, d.ID+": slowed to 1 km/h at every crossing of "+rt.ID)
	}
	if gap {
		g.sweeperGap(v, b)
	}
	v.park(g.to)
}

// sweeperGap drives the sweeper away once its window is over, brush up,
// with its tracker silent for 15 minutes on the way.
func (g *gen) sweeperGap(v *vehicle, end time.Time) {
	v.park(end.Add(5 * time.Minute))
	dst := g.freePoint(v.pos, 4000)
	mid := lerp(v.pos, dst, 0.3)
	v.drive(mid, driveOpts{kmh: 20})
	last := v.t.Add(-step)
	v.silentFrom, v.silentTo = v.t, v.t.Add(15*time.Minute)
	v.drive(dst, driveOpts{kmh: 20})
	v.park(v.silentTo)
	v.drive(g.freePoint(dst, 1000), driveOpts{kmh: 20})
	g.expect(Expected{Type: "tracking_gap", Device: v.id, Start: last, End: v.silentTo, Severity: "major",
		Note: "sweeper's tracker silent for 15 min on its way back"})
	g.expect(Expected{Type: "device_offline", Device: v.id, Start: last, End: last.Add(30 * time.Second), Severity: "minor",
		Note: "sweeper's tracker silent for 15 min on its way back"})
}
