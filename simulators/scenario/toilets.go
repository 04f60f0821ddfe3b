package scenario

import (
	"math"
	"math/rand/v2"
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
	c := toiletCounters{people: int64(r.IntN(5000))}
	c.water = r.Float64() * 1e4
	c.kwh = r.Float64() * 500
	c.paper, c.soap = 60+40*r.Float64(), 60+40*r.Float64()
	var recent []time.Time // visits of the last three minutes
	t0, t1 := g.toiletWindow(inj)
	in := func(t time.Time) bool { return !t.Before(t0) && t.Before(t1) }
	var first, last time.Time
	helpDone := false
	phase := time.Duration(r.IntN(int(every/time.Second))) * time.Second
	for t := g.from.Add(phase); t.Before(g.to); t = t.Add(every) {
		lambda := toiletVisitRate(t.In(g.from.Location()).Hour())
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
		c.visit(visits, every)
		stalls := int64(min(len(recent), 6))
		busy := math.Min(1, float64(len(recent))/3)
		nh3 := clamp(limit*(0.25+0.15*busy)+r.NormFloat64()*limit*0.03, 0, 100)
		h2s := clamp(0.003+r.NormFloat64()*0.0005, 0, 1)
		temp := 18 + r.NormFloat64()*0.3
		pp, ss := c.paper, c.soap
		if injecting {
			if first.IsZero() {
				first = t
			}
			if !injectToilet(r, inj, limit, every, &c, &nh3, &pp, &temp, &stalls) {
				continue
			}
		}
		if inj == "supply" && !t1.IsZero() && !t.Before(t1) {
			c.paper, c.soap = 100, 100
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
			"people_in": c.people, "water_l": round(c.water, 1), "power_kwh": round(c.kwh, 2),
			"paper_pct": round(pp, 1), "soap_pct": round(ss, 1), "fault_code": 0,
		})
		last = t
	}
	if !first.IsZero() {
		g.expectToilet(d, inj, first, every)
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

// toiletWindows are the toilet injections that last a while: they start
// between hours from and to after midnight and last length.
var toiletWindows = map[string]struct {
	from, to float64
	length   time.Duration
}{
	"odour":       {9, 20, 40 * time.Minute},
	"odour_near":  {9, 20, 5 * time.Minute},
	"supply":      {12, 16, 3 * time.Hour},
	"supply_near": {12, 16, 3 * time.Hour},
	"help":        {8, 22, 0},
	"occupied":    {1, 3.5, 45 * time.Minute},
	"leak":        {0.5, 2.5, 60 * time.Minute},
	"leak_near":   {0.5, 3, 15 * time.Minute},
	"cold":        {5, 20, 60 * time.Minute},
	"cold_class1": {5, 20, 60 * time.Minute},
	"cold_near":   {5, 20, 2 * time.Hour},
	"offline":     {9, 20, 30 * time.Minute},
}

// toiletWindow draws the time window of a toilet injection: from t0 until
// t1 (zero for the help button, which is an instant).
func (g *gen) toiletWindow(inj string) (t0, t1 time.Time) {
	w, ok := toiletWindows[inj]
	if !ok {
		return t0, t1
	}
	t0 = g.at(w.from, w.to)
	if inj == "help" {
		return t0.Add(23 * time.Second), t1
	}
	return t0, t0.Add(w.length)
}

// toiletVisitRate is the mean number of visits a minute at an hour of the day.
func toiletVisitRate(hour int) float64 {
	lambda := 0.01
	if hour >= 7 && hour <= 21 {
		lambda = 0.8
	} else if hour >= 5 && hour < 7 || hour > 21 {
		lambda = 0.2
	}
	if hour < 5 {
		lambda = 0.005
	}
	return lambda
}

// toiletCounters are a toilet's running totals and its consumables.
type toiletCounters struct {
	people                  int64
	water, kwh, paper, soap float64
}

// visit counts visits over one interval of every: water and power used,
// paper and soap taken, and refilled by the attendant when low.
func (c *toiletCounters) visit(visits int64, every time.Duration) {
	c.people += visits
	c.water += 6 * float64(visits)
	c.kwh += 0.02 * every.Minutes()
	c.paper = clamp(c.paper-0.03*float64(visits), 0, 100)
	c.soap = clamp(c.soap-0.02*float64(visits), 0, 100)
	if c.paper < 25 || c.soap < 25 {
		c.paper, c.soap = 100, 100 // the attendant's round
	}
}

// injectToilet alters one sample of a toilet under injection inj, drawing
// from r. It reports false when the sample is not sent (offline).
func injectToilet(r *rand.Rand, inj string, limit float64, every time.Duration, c *toiletCounters, nh3, pp, temp *float64, stalls *int64) bool {
	switch inj {
	case "odour", "odour_near":
		*nh3 = limit * (1.6 + r.NormFloat64()*0.05)
	case "supply":
		*pp = 8 + r.Float64()
	case "supply_near":
		*pp = 11 + r.Float64()
	case "occupied":
		*stalls = 1
	case "leak", "leak_near":
		c.water += 1.0 * every.Minutes()
	case "cold":
		*temp = 8 + r.NormFloat64()*0.3
	case "cold_class1":
		*temp = 12.5 + r.NormFloat64()*0.3
	case "cold_near":
		*temp = 11 + r.NormFloat64()*0.3
	case "offline":
		return false
	}
	return true
}

// expectToilet records the violation, or the near miss, that injection inj
// makes on toilet d from its first injected sample on.
func (g *gen) expectToilet(d *fleet.Device, inj string, first time.Time, every time.Duration) {
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
