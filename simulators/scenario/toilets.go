package scenario

import (
	"math"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// Toilet injections, each on its own toilet.
var toiletInjections = []string{"odour", "odour_near", "supply", "supply_near", "help", "occupied", "leak", "leak_near",
	"cold", "cold_class1", "cold_near", "offline"}

func (g *gen) toilets() {
	all := g.devicesOf("toilet")
	order := append([]*fleet.Device(nil), all...)
	g.shuffle(order)
	inj := map[string]string{}
	used := map[string]bool{}
	// cold_class1 needs a class 1 toilet, cold and cold_near another class.
	for _, name := range toiletInjections {
		for _, d := range order {
			if used[d.ID] {
				continue
			}
			if name == "cold_class1" && d.Class != 1 || (name == "cold" || name == "cold_near") && d.Class == 1 {
				continue
			}
			inj[d.ID], used[d.ID] = name, true
			break
		}
	}
	for _, d := range all {
		g.toiletDay(d, inj[d.ID])
	}
}

func (g *gen) toiletDay(d *fleet.Device, inj string) {
	r := g.rngFor(d.ID)
	every := d.Interval.D()
	if every <= 0 {
		every = time.Minute
	}
	limit := map[int]float64{1: 0.3, 2: 1, 3: 3}[d.Class]
	if limit == 0 {
		limit = 1
	}
	people := int64(r.IntN(5000))
	water := r.Float64() * 1e4
	kwh := r.Float64() * 500
	paper, soap := 60+40*r.Float64(), 60+40*r.Float64()
	var recent []time.Time // visits of the last three minutes
	var t0, t1 time.Time
	switch inj {
	case "odour":
		t0 = g.at(9, 20)
		t1 = t0.Add(40 * time.Minute)
	case "odour_near":
		t0 = g.at(9, 20)
		t1 = t0.Add(5 * time.Minute)
	case "supply", "supply_near":
		t0 = g.at(12, 16)
		t1 = t0.Add(3 * time.Hour)
	case "help":
		t0 = g.at(8, 22).Add(23 * time.Second)
	case "occupied":
		t0 = g.at(1, 3.5)
		t1 = t0.Add(45 * time.Minute)
	case "leak":
		t0 = g.at(0.5, 2.5)
		t1 = t0.Add(60 * time.Minute)
	case "leak_near":
		t0 = g.at(0.5, 3)
		t1 = t0.Add(15 * time.Minute)
	case "cold", "cold_class1":
		t0 = g.at(5, 20)
		t1 = t0.Add(60 * time.Minute)
	case "cold_near":
		t0 = g.at(5, 20)
		t1 = t0.Add(2 * time.Hour)
	case "offline":
		t0 = g.at(9, 20)
		t1 = t0.Add(30 * time.Minute)
	}
	in := func(t time.Time) bool { return !t.Before(t0) && t.Before(t1) }
	var first, last time.Time
	helpDone := false
	phase := time.Duration(r.IntN(int(every/time.Second))) * time.Second
	for t := g.from.Add(phase); t.Before(g.to); t = t.Add(every) {
		hour := t.In(g.from.Location()).Hour()
		lambda := 0.01
		if hour >= 7 && hour <= 21 {
			lambda = 0.8
		} else if hour >= 5 && hour < 7 || hour > 21 {
			lambda = 0.2
		}
		if hour < 5 {
			lambda = 0.005
		}
		injecting := in(t)
		if injecting && (inj == "leak" || inj == "leak_near" || inj == "occupied") {
			lambda = 0
		}
		visits := poisson(r.Float64, lambda*every.Minutes())
		if inj == "occupied" && injecting && first.IsZero() {
			visits = 1
		}
		for i := int64(0); i < visits; i++ {
			recent = append(recent, t)
		}
		for len(recent) > 0 && t.Sub(recent[0]) >= 3*time.Minute {
			recent = recent[1:]
		}
		people += visits
		water += 6 * float64(visits)
		kwh += 0.02 * every.Minutes()
		paper = clamp(paper-0.03*float64(visits), 0, 100)
		soap = clamp(soap-0.02*float64(visits), 0, 100)
		if paper < 25 || soap < 25 {
			paper, soap = 100, 100 // the attendant's round
		}
		stalls := int64(min(len(recent), 6))
		busy := math.Min(1, float64(len(recent))/3)
		nh3 := clamp(limit*(0.25+0.15*busy)+r.NormFloat64()*limit*0.03, 0, 100)
		h2s := clamp(0.003+r.NormFloat64()*0.0005, 0, 1)
		temp := 18 + r.NormFloat64()*0.3
		pp, ss := paper, soap
		if injecting {
			if first.IsZero() {
				first = t
			}
			switch inj {
			case "odour", "odour_near":
				nh3 = limit * (1.6 + r.NormFloat64()*0.05)
			case "supply":
				pp = 8 + r.Float64()
			case "supply_near":
				pp = 11 + r.Float64()
			case "occupied":
				stalls = 1
			case "leak", "leak_near":
				water += 1.0 * every.Minutes()
			case "cold":
				temp = 8 + r.NormFloat64()*0.3
			case "cold_class1":
				temp = 12.5 + r.NormFloat64()*0.3
			case "cold_near":
				temp = 11 + r.NormFloat64()*0.3
			case "offline":
				continue
			}
		}
		if inj == "supply" && !t1.IsZero() && !t.Before(t1) {
			paper, soap = 100, 100
		}
		if inj == "help" && !helpDone && !t.Before(t0) {
			g.emit(d.ID, "events", t0, map[string]any{"event": "help_button", "stall": 2})
			g.expect(Expected{Type: "toilet_safety", Device: d.ID, Start: t0, End: t0, Severity: "critical", Note: "help button"})
			helpDone = true
		}
		if inj == "offline" && !t.Before(t1) && !last.IsZero() && last.Before(t0) {
			g.expect(Expected{Type: "device_offline", Device: d.ID, Start: last, End: last.Add(3 * every), Severity: "minor", Note: "silent for 30 minutes"})
			last = t
		}
		g.emit(d.ID, "telemetry", t, map[string]any{
			"nh3_mgm3": round(nh3, 3), "h2s_mgm3": round(h2s, 4), "temp_c": round(temp, 1),
			"humidity_pct": round(clamp(55+r.NormFloat64()*5, 0, 100), 1), "stalls_occupied": stalls,
			"people_in": people, "water_l": round(water, 1), "power_kwh": round(kwh, 2),
			"paper_pct": round(pp, 1), "soap_pct": round(ss, 1), "fault_code": 0,
		})
		last = t
	}
	if first.IsZero() {
		return
	}
	switch inj {
	case "odour":
		g.expect(Expected{Type: "toilet_odour", Device: d.ID, Start: first, End: first.Add(15 * time.Minute), Severity: "major", Note: "ammonia at 1.6 x the limit for 40 min"})
	case "supply":
		g.expect(Expected{Type: "toilet_consumables", Device: d.ID, Start: first, End: first.Add(every), Severity: "minor", Note: "paper under 10 %"})
	case "occupied":
		g.expect(Expected{Type: "toilet_safety", Device: d.ID, Start: first, End: first.Add(30 * time.Minute), Severity: "critical", Note: "a stall occupied for 45 min at night"})
	case "leak":
		g.expect(Expected{Type: "toilet_leak", Device: d.ID, Start: first.Add(-every), End: first.Add(30 * time.Minute), Severity: "minor", Note: "1 l/min for an hour at night"})
	case "cold", "cold_class1":
		g.expect(Expected{Type: "toilet_cold", Device: d.ID, Start: first, End: first.Add(30 * time.Minute), Severity: "minor", Note: "cold for an hour"})
	case "odour_near":
		g.near = append(g.near, d.ID+": ammonia over the limit for 5 minutes")
	case "supply_near":
		g.near = append(g.near, d.ID+": paper at 11 %")
	case "leak_near":
		g.near = append(g.near, d.ID+": water flowing at night for 15 minutes")
	case "cold_near":
		g.near = append(g.near, d.ID+": 11 C in a class 2 or 3 toilet")
	}
}

// poisson draws from a Poisson distribution of mean lambda.
func poisson(u func() float64, lambda float64) int64 {
	if lambda <= 0 {
		return 0
	}
	l := math.Exp(-lambda)
	k := int64(0)
	p := 1.0
	for {
		p *= u()
		if p <= l {
			return k
		}
		k++
	}
}
