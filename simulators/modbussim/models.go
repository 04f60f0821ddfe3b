package modbussim

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sanigate/sanigate/telemetry"
)

// model produces a device's field values, one step at a time. A model is
// driven by one goroutine at a time (the simulator's lock is held).
type model interface {
	step(r *rand.Rand) map[string]telemetry.Field
}

// models builds the value model of each shipped profile.
var models = map[string]func(r *rand.Rand) model{
	"toilet_controller": func(r *rand.Rand) model {
		return &toilet{nh3: 0.2 + r.Float64()*0.3, h2s: 0.003, temp: 18 + r.Float64()*4, hum: 60, paper: 100, soap: 100}
	},
	"weighbridge": func(r *rand.Rand) model { return &weighbridge{} },
	"compactor_bin": func(r *rand.Rand) model {
		return &compactor{fill: r.Float64() * 40, battery: 80, temp: 20}
	},
}

func num(v float64) telemetry.Field                    { return telemetry.Field{Type: telemetry.Float, Num: v} }
func whole(v int64) telemetry.Field                    { return telemetry.Field{Type: telemetry.Int, Num: float64(v)} }
func flag(v bool) telemetry.Field                      { return telemetry.Field{Type: telemetry.Bool, Num: float64(b2f(v))} }
func text(v string) telemetry.Field                    { return telemetry.Field{Type: telemetry.String, Str: v} }
func walk(r *rand.Rand, v, sd, lo, hi float64) float64 { return min(hi, max(lo, v+r.NormFloat64()*sd)) }

func b2f(b bool) int {
	if b {
		return 1
	}
	return 0
}

// toilet is a public toilet through the day: gas levels drift and climb with
// use, visitors arrive, meters count up, paper and soap run down until the
// attendant refills them.
type toilet struct {
	nh3, h2s, temp, hum float64
	people              int64
	water, power        float64
	paper, soap         int64
	n                   int
}

func (t *toilet) step(r *rand.Rand) map[string]telemetry.Field {
	t.n++
	visitors := int64(r.IntN(4))
	t.people += visitors
	t.nh3 = walk(r, t.nh3+0.02*float64(visitors)-0.03, 0.03, 0.02, 5)
	t.h2s = walk(r, t.h2s, 0.001, 0, 0.05)
	t.temp = walk(r, t.temp, 0.1, -10, 40)
	t.hum = walk(r, t.hum, 0.5, 20, 99)
	t.water += 6*float64(visitors) + 0.1
	t.power += 0.02
	if r.IntN(3) == 0 && t.paper > 0 {
		t.paper--
	}
	if r.IntN(4) == 0 && t.soap > 0 {
		t.soap--
	}
	if t.paper < 5 && r.IntN(20) == 0 {
		t.paper = 100
	}
	if t.soap < 5 && r.IntN(20) == 0 {
		t.soap = 100
	}
	fault := int64(0)
	if r.IntN(200) == 0 {
		fault = int64(1 + r.IntN(9))
	}
	return map[string]telemetry.Field{
		"nh3_mgm3": num(float64(float32(t.nh3))), "h2s_mgm3": num(float64(float32(t.h2s))),
		"temp_c": num(math.Round(t.temp*10) / 10), "humidity_pct": num(math.Round(t.hum*10) / 10),
		"stalls_occupied": whole(int64(r.IntN(7))), "fault_code": whole(fault),
		"paper_pct": whole(t.paper), "soap_pct": whole(t.soap),
		"people_in": whole(t.people), "water_l": num(math.Round(t.water*10) / 10),
		"power_kwh": num(math.Round(t.power*100) / 100),
	}
}

// weighbridge completes a weighing now and then; the indicator keeps the last
// one and counts them.
type weighbridge struct {
	seq              int64
	truck            string
	gross, tare, net int64
	stable           bool
}

func (w *weighbridge) step(r *rand.Rand) map[string]telemetry.Field {
	if w.seq == 0 || r.IntN(3) == 0 {
		w.seq = (w.seq + 1) % 65536
		w.truck = fmt.Sprintf("TRK-%04d", r.IntN(10000))
		w.tare = 8000 + int64(r.IntN(4000))
		w.net = 2000 + int64(r.IntN(16000))
		w.gross = w.tare + w.net
	}
	w.stable = r.IntN(10) != 0
	return map[string]telemetry.Field{
		"weighing_seq": whole(w.seq), "truck_id": text(w.truck),
		"gross_kg": whole(w.gross), "tare_kg": whole(w.tare), "net_kg": whole(w.net),
		"stable": flag(w.stable),
	}
}

// compactor is a solar compactor bin: it fills, compacts when nearly full,
// is emptied by the crew, and charges its battery by day.
type compactor struct {
	fill, weight, temp, battery float64
	compactions                 int64
	n                           int
}

func (c *compactor) step(r *rand.Rand) map[string]telemetry.Field {
	c.n++
	add := r.Float64() * 2
	c.fill += add
	c.weight += add * 0.8
	if c.fill >= 85 {
		c.fill *= 0.45
		c.compactions++
	}
	if c.compactions > 0 && c.compactions%6 == 0 && c.fill > 70 {
		c.fill, c.weight = 0, 0 // emptied
	}
	c.temp = walk(r, c.temp, 0.2, -15, 60)
	sun := math.Sin(float64(c.n) / 60 * math.Pi)
	c.battery = min(100, max(0, c.battery+sun*0.5-0.1))
	return map[string]telemetry.Field{
		"fill_pct": num(math.Round(c.fill*10) / 10), "weight_kg": num(float64(float32(c.weight))),
		"temp_c": num(math.Round(c.temp*10) / 10), "battery_pct": whole(int64(c.battery)),
		"compactions": whole(c.compactions), "lid_open": flag(r.IntN(20) == 0),
	}
}
