package scenario

import (
	"math"
	"math/rand/v2"
	"time"
)

// step is how often vehicles report.
const step = 10 * time.Second

// vehicle simulates one truck or sweeper on a 10-second grid of samples.
type vehicle struct {
	g        *gen
	id       string
	sweeper  bool
	rng      *rand.Rand
	t        time.Time
	pos      point
	load     float64
	tipper   bool
	ignition bool
	brush    bool
	fuel     float64
	water    float64
	// silent spans no message is sent in (offline injection)
	silentFrom, silentTo time.Time
	tunnel               int // samples left without a fix
	lastHeading          float64
}

func (v *vehicle) silent(t time.Time) bool {
	return !t.Before(v.silentFrom) && t.Before(v.silentTo)
}

// sample reports the current state, then moves the clock on by a step.
func (v *vehicle) sample(speed float64) {
	if !v.t.Before(v.g.to) {
		return
	}
	if !v.silent(v.t) {
		f := map[string]any{"speed_kmh": round(math.Max(0, speed), 1), "heading_deg": round(v.lastHeading, 0)}
		r := v.rng
		if v.tunnel > 0 {
			v.tunnel--
		} else {
			p := jitter(r, v.pos, 2.5)
			hdop := round(0.7+r.Float64()*0.9, 1)
			switch x := r.Float64(); {
			case x < 1.0/400: // a multipath jump of a few km
				p = point{p.Lat + 0.03, p.Lon - 0.02}
			case x < 2.0/400:
				hdop = round(8+r.Float64()*4, 1)
			case x < 2.0/400+1.0/3000 && speed > 0 && !v.sweeper:
				v.tunnel = 6 + r.IntN(12) // an underpass: a minute or two without a fix
			}
			f["lat"], f["lon"], f["hdop"] = round(p.Lat, 6), round(p.Lon, 6), hdop
		}
		if v.sweeper {
			f["brush_on"], f["vacuum_on"], f["water_pct"] = v.brush, v.brush, round(v.water, 1)
		} else {
			load := v.load + r.NormFloat64()*12
			if r.Float64() < 1.0/500 {
				load += (r.Float64()*2 - 1) * 300 // a pothole or a loose cable: one sample off
			}
			f["load_kg"] = round(math.Max(-100, load), 0)
			f["ignition"], f["tipper"], f["fuel_pct"] = v.ignition, v.tipper, round(v.fuel, 1)
		}
		v.g.emit(v.id, "telemetry", v.t, f)
	}
	if speed > 0 {
		v.fuel = clamp(v.fuel-0.002, 5, 100)
		if v.brush {
			v.water = clamp(v.water-0.01, 0, 100)
		}
	}
	v.t = v.t.Add(step)
}

func (v *vehicle) event(name string, extra map[string]any) {
	if v.silent(v.t) || !v.t.Before(v.g.to) {
		return
	}
	f := map[string]any{"event": name, "lat": round(v.pos.Lat, 6), "lon": round(v.pos.Lon, 6)}
	for k, x := range extra {
		f[k] = x
	}
	if !v.sweeper {
		f["load_kg"] = round(v.load, 0)
	}
	v.g.emit(v.id, "events", v.t.Add(time.Second), f)
}

func (v *vehicle) park(until time.Time) {
	for v.t.Before(until) && v.t.Before(v.g.to) {
		v.sample(0)
	}
}

// stop stands still for n samples; each calls fn(i) first (may be nil).
func (v *vehicle) stop(n int, fn func(i int)) {
	for i := 0; i < n; i++ {
		if fn != nil {
			fn(i)
		}
		v.sample(0)
	}
}

// drive goes to dst at kmh. lossKG is lost over the first lossOverM metres
// (spillage); lights allows stops at traffic lights; slowAtEnd slows down
// for a crossing before dst.
type driveOpts struct {
	kmh       float64
	lossKG    float64
	lossOverM float64
	lights    bool
	slowAtEnd bool
}

func (v *vehicle) drive(dst point, o driveOpts) {
	a := v.pos
	total := dist(a, dst)
	done := 0.0
	if total < 1 {
		return
	}
	v.lastHeading = bearing(a, dst)
	for done < total && v.t.Before(v.g.to) {
		if o.lights && v.rng.Float64() < 1.0/70 {
			v.stop(3+v.rng.IntN(3), nil) // a red light: the load must not move
		}
		speed := o.kmh + v.rng.NormFloat64()*o.kmh*0.04
		if o.slowAtEnd && total-done < 15 {
			speed = 1 // slowing at a crossing
		}
		adv := speed / 3.6 * step.Seconds()
		if o.lossKG > 0 && done < o.lossOverM {
			v.load -= o.lossKG * math.Min(adv, o.lossOverM-done) / o.lossOverM
		}
		done = math.Min(total, done+adv)
		v.pos = lerp(a, dst, done/total)
		v.sample(speed)
	}
}
