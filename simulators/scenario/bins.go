package scenario

import (
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// Bin injections, each on its own bin.
var binInjections = []string{"overflow", "overflow_long", "overflow_near", "fill_spike", "fire_rise", "fire_alarm",
	"fire_spike", "tilt", "tilt_near", "moved", "contam", "contam_near", "battery", "battery_near", "offline"}

func (g *gen) bins() {
	all := g.devicesOf("bin")
	order := append([]*fleet.Device(nil), all...)
	g.shuffle(order)
	type plan struct {
		inj    string
		t0, t1 time.Time
	}
	plans := map[string]plan{}
	for _, inj := range binInjections {
		a, b, span := 9.0, 19.0, 2*time.Hour
		switch inj {
		case "overflow", "overflow_near":
			a, b, span = 8, 12, 3*time.Hour
		case "overflow_long":
			a, b, span = 6, 12.5, 9*time.Hour+30*time.Minute
		case "fire_alarm":
			span = 10 * time.Minute
		case "battery":
			a, b, span = 8, 14, 0
		case "offline":
			a, b, span = 9, 18, 90*time.Minute
		}
		// A truck emptying the bin would end a full bin early, and its
		// emptied event would break a silence.
		strict := inj == "overflow" || inj == "overflow_long" || inj == "overflow_near" || inj == "fill_spike" || inj == "offline"
	pick:
		for try := 0; try < 400; try++ {
			d := order[g.rng.IntN(len(order))]
			if g.busy[d.ID] {
				continue
			}
			t0 := g.at(a, b)
			t1 := t0.Add(span)
			if span == 0 {
				t1 = g.to
			}
			if strict {
				for _, p := range g.pickups[d.ID] {
					if p.After(t0.Add(-30*time.Minute)) && p.Before(t1.Add(10*time.Minute)) {
						continue pick
					}
				}
			}
			if inj == "fire_alarm" {
				t0 = t0.Add(17 * time.Second)
			}
			g.busy[d.ID] = true
			plans[d.ID] = plan{inj, t0, t1}
			break
		}
	}
	for _, d := range all {
		p := plans[d.ID]
		g.binDay(d, p.inj, p.t0, p.t1)
	}
}

// at returns a random time between a and b hours after midnight, on a
// minute.
func (g *gen) at(a, b float64) time.Time {
	h := a + g.rng.Float64()*(b-a)
	return g.from.Add(time.Duration(h * float64(time.Hour))).Truncate(time.Minute)
}

func (g *gen) binDay(d *fleet.Device, inj string, t0, t1 time.Time) {
	r := g.rngFor(d.ID)
	home := point{39.9, 116.4}
	if d.Lat != nil {
		home = point{*d.Lat, *d.Lon}
	}
	every := d.Interval.D()
	if every <= 0 {
		every = 5 * time.Minute
	}
	fill := 5 + 25*r.Float64()
	rate := 0.4 + r.Float64() // % per hour
	battery := 40 + 60*r.Float64()
	density := map[string]float64{"kitchen": 2.4, "recyclable": 0.6, "hazardous": 0.3, "other": 1.2}[d.Category]
	pickups := append([]time.Time(nil), g.pickups[d.ID]...)
	sort.Slice(pickups, func(i, j int) bool { return pickups[i].Before(pickups[j]) })

	in := func(t time.Time) bool { return !t.Before(t0) && t.Before(t1) }
	firstIn := time.Time{}
	var last time.Time
	var k int // readings into the injection
	phase := time.Duration(r.IntN(int(every/time.Second))) * time.Second
	alarmDone := false
	for t := g.from.Add(phase); t.Before(g.to); t = t.Add(every) {
		h := t.Sub(g.from).Hours()
		for len(pickups) > 0 && !pickups[0].After(t) {
			g.emit(d.ID, "events", pickups[0].Add(30*time.Second), map[string]any{"event": "emptied", "fill_pct": 1.0})
			fill = 1
			pickups = pickups[1:]
		}
		if inj == "fire_alarm" && !alarmDone && !t.Before(t0) {
			g.emit(d.ID, "events", t0, map[string]any{"event": "fire_alarm", "temp_c": 48.0})
			g.expect(Expected{Type: "bin_fire", Device: d.ID, Start: t0, End: t0, Severity: "critical", Note: "fire alarm"})
			alarmDone = true
		}
		fill = clamp(fill+rate*every.Hours(), 0, 100)
		smp := binSample{f: fill}
		smp.temp = 12 + 5*math.Sin((h-9)/24*2*math.Pi) + r.NormFloat64()*0.3
		smp.tilt = math.Abs(r.NormFloat64())
		smp.contam = clamp(5+r.NormFloat64()*2.5, 0, 100)
		smp.bat = battery - 0.02*h
		smp.pos = jitter(r, home, 3)
		if inj == "battery_near" {
			smp.bat = 16.5 - 0.02*h
		}
		if in(t) {
			if firstIn.IsZero() {
				firstIn = t
			}
			ok := injectBin(r, inj, k, t.Sub(t0), home, &smp)
			k++
			if !ok {
				continue
			}
		}
		if inj == "offline" && !t.Before(t1) && !last.IsZero() && last.Before(t0) {
			g.expect(Expected{Type: "device_offline", Device: d.ID, Start: last, End: last.Add(3 * every), Severity: "minor",
				Note: "silent for 90 minutes"})
		}
		if (inj == "overflow" || inj == "overflow_long" || inj == "overflow_near") && !t1.IsZero() && !t.Before(t1) && smp.f > 80 && !in(t) {
			g.emit(d.ID, "events", t1, map[string]any{"event": "emptied", "fill_pct": 1.0})
			fill, smp.f = 1, 1
			t1 = time.Time{}
		}
		g.emit(d.ID, "telemetry", t, map[string]any{
			"fill_pct": round(smp.f, 1), "weight_kg": round(math.Max(0, smp.f*density+r.NormFloat64()*0.5), 1),
			"temp_c": round(smp.temp, 1), "tilt_deg": round(smp.tilt, 1), "lid_open": r.Float64() < 0.02,
			"battery_pct": round(clamp(smp.bat, 0, 100), 1), "contamination_pct": round(smp.contam, 1),
			"lat": round(smp.pos.Lat, 6), "lon": round(smp.pos.Lon, 6),
		})
		last = t
	}
	if !firstIn.IsZero() {
		g.expectBin(d, inj, firstIn, every)
	}
}

// binSample is one reading of a bin before it is rounded and sent.
type binSample struct {
	f, temp, tilt, contam, bat float64
	pos                        point
}

// injectBin alters the k-th sample of a bin under injection inj, taken since
// after the injection's start, drawing from r. It reports false when the
// sample is not sent (offline).
func injectBin(r *rand.Rand, inj string, k int, since time.Duration, home point, s *binSample) bool {
	switch inj {
	case "overflow", "overflow_long":
		s.f = clamp(93+r.NormFloat64(), 90.5, 100)
	case "overflow_near":
		s.f = clamp(87.5+r.NormFloat64()*0.8, 85, 89.4)
	case "fill_spike":
		if k == 0 {
			s.f = 98
		}
	case "fire_rise":
		curve := []float64{8, 25, 55, 75, 85, 85, 85, 85, 85, 85, 70, 50, 35, 25, 20}
		if k < len(curve) {
			s.temp += curve[k]
		}
	case "fire_spike":
		if k == 0 {
			s.temp = 75
		}
	case "tilt":
		if k < 8 {
			s.tilt = 80 + r.NormFloat64()*2
		}
	case "tilt_near":
		if k == 0 {
			s.tilt = 60
		}
	case "moved":
		s.pos = jitter(r, point{home.Lat, home.Lon + 120/(111320*math.Cos(home.Lat*math.Pi/180))}, 3)
	case "contam":
		if k < 4 {
			s.contam = 25 + 8*r.Float64()
		}
	case "contam_near":
		if k < 2 {
			s.contam = 30
		}
	case "battery":
		s.bat = 13 - 0.01*since.Hours()
	case "offline":
		return false
	}
	return true
}

// expectBin records the violation, or the near miss, that injection inj
// makes on bin d from its first injected sample on.
func (g *gen) expectBin(d *fleet.Device, inj string, firstIn time.Time, every time.Duration) {
	switch inj {
	case "overflow":
		g.expect(Expected{Type: "bin_overflow", Device: d.ID, Start: firstIn, End: firstIn.Add(2 * time.Hour), Severity: "minor", Note: "full for 3 h"})
	case "overflow_long":
		g.expect(Expected{Type: "bin_overflow", Device: d.ID, Start: firstIn, End: firstIn.Add(8 * time.Hour), Severity: "major", Note: "full for 9.5 h"})
	case "fire_rise":
		g.expect(Expected{Type: "bin_fire", Device: d.ID, Start: firstIn.Add(every), End: firstIn.Add(2 * every), Severity: "critical", Note: "temperature rising fast"})
	case "tilt":
		g.expect(Expected{Type: "bin_damaged", Device: d.ID, Start: firstIn, End: firstIn.Add(5 * time.Minute), Severity: "minor", Note: "knocked over for 40 min"})
	case "moved":
		g.expect(Expected{Type: "bin_damaged", Device: d.ID, Start: firstIn, End: firstIn.Add(every), Place: "moved", Severity: "minor", Note: "moved 120 m for 2 h"})
	case "contam":
		g.expect(Expected{Type: "sorting_contamination", Device: d.ID, Start: firstIn, End: firstIn.Add(2 * every), Severity: "minor", Note: "4 readings over 25 %"})
	case "battery":
		g.expect(Expected{Type: "low_battery", Device: d.ID, Start: firstIn, End: firstIn.Add(every), Severity: "minor", Note: "battery at 13 %"})
	case "overflow_near":
		g.near = append(g.near, d.ID+": 86-89 % full for 3 h")
	case "fill_spike":
		g.near = append(g.near, d.ID+": one reading at 98 %")
	case "fire_spike":
		g.near = append(g.near, d.ID+": one reading at 75 C")
	case "tilt_near":
		g.near = append(g.near, d.ID+": tilted 60 degrees for one reading")
	case "contam_near":
		g.near = append(g.near, d.ID+": two readings in a row at 30 % contamination")
	}
	if inj == "battery_near" {
		g.near = append(g.near, d.ID+": battery at 16 %")
	}
}
