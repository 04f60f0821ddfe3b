// Package simulators holds simulated devices of every kind, as a library
// first: tests, benchmarks, `cmd/sanisim` and `make run` share them. Every
// device is deterministic for a seed, so a run can be replayed.
package simulators

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"
)

// Message is one MQTT publish a simulated device makes.
type Message struct {
	Channel string // "telemetry" or "events"
	Payload []byte
}

// Device is a simulated device. Step advances it to now and returns what it
// publishes; calls come from one goroutine, with now never going backwards.
type Device interface {
	ID() string
	Kind() string
	Step(now time.Time) []Message
}

// Point is a WGS-84 position.
type Point struct{ Lat, Lon float64 }

// rngFor gives each device its own stream, fixed by the seed and its id.
func rngFor(seed uint64, id string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(id))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

func reading(ts time.Time, fields map[string]any) []byte {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	m["ts"] = ts.UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(m)
	return b
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// distanceM is the haversine distance in metres.
func distanceM(a, b Point) float64 {
	const r = 6371008.8
	la1, la2 := a.Lat*math.Pi/180, b.Lat*math.Pi/180
	dla := la2 - la1
	dlo := (b.Lon - a.Lon) * math.Pi / 180
	h := math.Sin(dla/2)*math.Sin(dla/2) + math.Cos(la1)*math.Cos(la2)*math.Sin(dlo/2)*math.Sin(dlo/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

func bearing(a, b Point) float64 {
	la1, la2 := a.Lat*math.Pi/180, b.Lat*math.Pi/180
	dlo := (b.Lon - a.Lon) * math.Pi / 180
	y := math.Sin(dlo) * math.Cos(la2)
	x := math.Cos(la1)*math.Sin(la2) - math.Sin(la1)*math.Cos(la2)*math.Cos(dlo)
	return math.Mod(math.Atan2(y, x)*180/math.Pi+360, 360)
}

// toward moves from a toward b by d metres (straight line; fine at city scale).
func toward(a, b Point, d float64) Point {
	total := distanceM(a, b)
	if total <= d || total == 0 {
		return b
	}
	f := d / total
	return Point{a.Lat + (b.Lat-a.Lat)*f, a.Lon + (b.Lon-a.Lon)*f}
}

// Bin is a smart bin that fills at a rate set by its category and the hour,
// and is emptied when full enough (or by a truck, through Empty).
type Bin struct {
	id, category string
	rng          *rand.Rand
	fill, weight float64
	battery      float64
	last         time.Time
	emptied      bool
	pos          Point
}

// NewBin returns a bin at pos.
func NewBin(seed uint64, id, category string, pos Point) *Bin {
	r := rngFor(seed, id)
	return &Bin{id: id, category: category, rng: r, fill: r.Float64() * 60, battery: 60 + r.Float64()*40, pos: pos}
}

func (b *Bin) ID() string   { return b.id }
func (b *Bin) Kind() string { return "bin" }

// Empty marks the bin as emptied by a truck at its next step.
func (b *Bin) Empty() { b.emptied = true }

// Fill is the current fill level in percent.
func (b *Bin) Fill() float64 { return b.fill }

func (b *Bin) Step(now time.Time) []Message {
	if b.last.IsZero() {
		b.last = now
	}
	hours := now.Sub(b.last).Hours()
	b.last = now
	rate := map[string]float64{"kitchen": 6, "recyclable": 3, "hazardous": 0.4, "other": 4}[b.category]
	h := now.Hour()
	if h < 6 || h > 22 {
		rate *= 0.2
	}
	b.fill = clamp(b.fill+rate*hours*(0.5+b.rng.Float64()), 0, 100)
	b.battery = clamp(b.battery-0.02*hours, 0, 100)
	var out []Message
	if b.emptied || b.fill > 92+b.rng.Float64()*8 {
		b.emptied = false
		b.fill = b.rng.Float64() * 3
		out = append(out, Message{"events", reading(now, map[string]any{"event": "emptied", "fill_pct": round(b.fill, 1)})})
	}
	density := map[string]float64{"kitchen": 2.4, "recyclable": 0.6, "hazardous": 0.3, "other": 1.2}[b.category]
	b.weight = b.fill * density
	out = append(out, Message{"telemetry", reading(now, map[string]any{
		"fill_pct":          round(b.fill, 1),
		"weight_kg":         round(math.Max(0, b.weight+b.rng.NormFloat64()*0.5), 1),
		"temp_c":            round(12+8*math.Sin(float64(now.Hour()-9)/24*2*math.Pi)+b.rng.NormFloat64()*0.3, 1),
		"tilt_deg":          round(math.Abs(b.rng.NormFloat64()), 1),
		"lid_open":          b.rng.Float64() < 0.02,
		"battery_pct":       round(b.battery, 1),
		"contamination_pct": round(clamp(5+b.rng.NormFloat64()*3, 0, 100), 1),
	})})
	return out
}

// Truck drives between its bins, lifting them, and unloads at its plant.
type Truck struct {
	id       string
	rng      *rand.Rand
	capacity float64
	stops    []Point
	bins     []*Bin
	plant    Point
	pos      Point
	next     int
	load     float64
	last     time.Time
	fuel     float64
	dwell    time.Duration
}

// NewTruck returns a truck starting at depot that visits bins in order and
// unloads at plant.
func NewTruck(seed uint64, id string, capacityKG float64, depot, plant Point, bins []*Bin) *Truck {
	t := &Truck{id: id, rng: rngFor(seed, id), capacity: capacityKG, plant: plant, pos: depot, bins: bins, fuel: 90}
	for _, b := range bins {
		t.stops = append(t.stops, b.pos)
	}
	return t
}

func (t *Truck) ID() string   { return t.id }
func (t *Truck) Kind() string { return "truck" }

func (t *Truck) Step(now time.Time) []Message {
	if t.last.IsZero() {
		t.last = now
	}
	dt := now.Sub(t.last)
	t.last = now
	var out []Message
	speed := 0.0
	tipper := false
	if t.dwell > 0 {
		t.dwell -= dt
	} else {
		target, atPlant := t.plant, true
		if t.next < len(t.stops) {
			target, atPlant = t.stops[t.next], false
		}
		speed = 25 + t.rng.Float64()*15
		step := speed / 3.6 * dt.Seconds()
		t.pos = toward(t.pos, target, step)
		if distanceM(t.pos, target) < 1 {
			speed = 0
			if atPlant {
				out = append(out, Message{"events", reading(now, map[string]any{"event": "unload_start", "lat": t.pos.Lat, "lon": t.pos.Lon, "load_kg": round(t.load, 0)})})
				t.load = 0
				tipper = true
				out = append(out, Message{"events", reading(now.Add(time.Second), map[string]any{"event": "unload_end", "lat": t.pos.Lat, "lon": t.pos.Lon, "load_kg": 0})})
				t.next = 0
				t.dwell = 10 * time.Minute
			} else {
				b := t.bins[t.next]
				t.load += b.Fill() * 2.4 * (0.8 + t.rng.Float64()*0.4)
				b.Empty()
				out = append(out, Message{"events", reading(now, map[string]any{"event": "pickup", "bin": b.ID(), "lat": t.pos.Lat, "lon": t.pos.Lon, "load_kg": round(t.load, 0)})})
				t.next++
				if t.load > t.capacity*0.9 {
					t.next = len(t.stops) // off to the plant
				}
				t.dwell = 90 * time.Second
			}
		}
	}
	t.fuel = clamp(t.fuel-0.001*dt.Seconds(), 5, 100)
	if t.fuel <= 5 {
		t.fuel = 95
	}
	out = append(out, Message{"telemetry", reading(now, map[string]any{
		"lat": round(t.pos.Lat+t.rng.NormFloat64()*0.00002, 6), "lon": round(t.pos.Lon+t.rng.NormFloat64()*0.00002, 6),
		"speed_kmh": round(speed, 1), "heading_deg": round(math.Mod(t.rng.Float64()*360, 360), 0), "hdop": round(0.8+t.rng.Float64()*0.8, 1),
		"load_kg": round(t.load+t.rng.NormFloat64()*15, 0), "ignition": true, "tipper": tipper, "fuel_pct": round(t.fuel, 1),
	})})
	return out
}

// Toilet is a public toilet whose odour follows its visitors and whose
// consumables run down until refilled.
type Toilet struct {
	id          string
	rng         *rand.Rand
	class       int
	nh3, h2s    float64
	people      int64
	water, kwh  float64
	paper, soap float64
	last        time.Time
}

// NewToilet returns a toilet of the given class (1-3).
func NewToilet(seed uint64, id string, class int) *Toilet {
	r := rngFor(seed, id)
	return &Toilet{id: id, rng: r, class: class, nh3: 0.1, h2s: 0.002, people: int64(r.IntN(5000)), water: r.Float64() * 1e4, kwh: r.Float64() * 500, paper: 50 + r.Float64()*50, soap: 50 + r.Float64()*50}
}

func (t *Toilet) ID() string   { return t.id }
func (t *Toilet) Kind() string { return "toilet" }

func (t *Toilet) Step(now time.Time) []Message {
	if t.last.IsZero() {
		t.last = now
	}
	mins := now.Sub(t.last).Minutes()
	t.last = now
	busy := 0.2
	if h := now.Hour(); h >= 7 && h <= 21 {
		busy = 1.5
	}
	visits := int64(math.Round(busy * mins * (0.5 + t.rng.Float64())))
	t.people += visits
	t.water += float64(visits) * 6
	t.kwh += 0.02 * mins
	t.paper = clamp(t.paper-float64(visits)*0.05, 0, 100)
	t.soap = clamp(t.soap-float64(visits)*0.03, 0, 100)
	if t.paper < 12 || t.soap < 12 {
		t.paper, t.soap = 100, 100 // the attendant's round
	}
	limit := map[int]float64{1: 0.3, 2: 1, 3: 3}[t.class]
	t.nh3 = clamp(t.nh3*0.9+limit*0.05*busy+t.rng.NormFloat64()*0.01, 0, 10)
	t.h2s = clamp(t.h2s*0.9+0.0005*busy+t.rng.NormFloat64()*0.0002, 0, 1)
	return []Message{{"telemetry", reading(now, map[string]any{
		"nh3_mgm3": round(t.nh3, 3), "h2s_mgm3": round(t.h2s, 4), "temp_c": round(18+t.rng.NormFloat64(), 1),
		"humidity_pct": round(clamp(55+t.rng.NormFloat64()*5, 0, 100), 1), "stalls_occupied": min(int64(busy*2+t.rng.Float64()*2), 6),
		"people_in": t.people, "water_l": round(t.water, 1), "power_kwh": round(t.kwh, 2),
		"paper_pct": round(t.paper, 1), "soap_pct": round(t.soap, 1), "fault_code": 0,
	})}}
}

// Sweeper drives its street back and forth with the brush down.
type Sweeper struct {
	id    string
	rng   *rand.Rand
	path  []Point
	pos   Point
	next  int
	dir   int
	water float64
	last  time.Time
}

// NewSweeper returns a sweeper that follows path (at least two points).
func NewSweeper(seed uint64, id string, path []Point) *Sweeper {
	return &Sweeper{id: id, rng: rngFor(seed, id), path: path, pos: path[0], next: 1, dir: 1, water: 100}
}

func (s *Sweeper) ID() string   { return s.id }
func (s *Sweeper) Kind() string { return "sweeper" }

func (s *Sweeper) Step(now time.Time) []Message {
	if s.last.IsZero() {
		s.last = now
	}
	dt := now.Sub(s.last)
	s.last = now
	speed := 5 + s.rng.Float64()*2
	target := s.path[s.next]
	s.pos = toward(s.pos, target, speed/3.6*dt.Seconds())
	if distanceM(s.pos, target) < 1 {
		if s.next+s.dir < 0 || s.next+s.dir >= len(s.path) {
			s.dir = -s.dir
		}
		s.next += s.dir
	}
	s.water = clamp(s.water-0.01*dt.Seconds(), 0, 100)
	if s.water == 0 {
		s.water = 100
	}
	return []Message{{"telemetry", reading(now, map[string]any{
		"lat": round(s.pos.Lat+s.rng.NormFloat64()*0.00002, 6), "lon": round(s.pos.Lon+s.rng.NormFloat64()*0.00002, 6),
		"speed_kmh": round(speed, 1), "heading_deg": round(bearing(s.pos, target), 0), "hdop": round(0.7+s.rng.Float64(), 1),
		"brush_on": true, "vacuum_on": true, "water_pct": round(s.water, 1),
	})}}
}
