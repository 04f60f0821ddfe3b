package violations_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/violationstest"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

func loadDemo(t testing.TB) *fleet.Config { return violationstest.Demo(t) }

// collector is a Sink that keeps what it is given.
type collector = violationstest.Collector

// cst is the demo city's zone; base is a Monday in the past, at midnight.
var (
	cst  = time.FixedZone("CST", 8*3600)
	base = time.Date(2026, 3, 2, 0, 0, 0, 0, cst)
)

// at is a time on the base day.
func at(h, m int) time.Time {
	return base.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// rd builds a reading.
func rd(dev, kind string, t time.Time, fields map[string]float64) telemetry.Reading {
	r := telemetry.Reading{Device: dev, Kind: kind, Time: t}
	for k, v := range fields {
		r.SetFloat(k, v)
	}
	return r
}

// ev builds an event.
func ev(dev, kind, name string, t time.Time, fields map[string]float64, text map[string]string) telemetry.Reading {
	r := rd(dev, kind, t, fields)
	r.Event = name
	for k, v := range text {
		r.SetString(k, v)
	}
	return r
}

// run feeds readings (in the order given) to a fresh engine, advances to
// end, and returns what it raised for device (all devices when "").
func run(t *testing.T, dc violations.Config, rs []telemetry.Reading, end time.Time, device string) []violations.Violation {
	t.Helper()
	cfg := loadDemo(t)
	col := &collector{}
	e := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 2})
	ctx := context.Background()
	for i := 0; i < len(rs); i += 50 {
		if err := e.ProcessReadings(ctx, rs[i:min(i+50, len(rs))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.AdvanceTo(ctx, end); err != nil {
		t.Fatal(err)
	}
	var out []violations.Violation
	for _, v := range col.List() {
		if device == "" || v.Device == device {
			out = append(out, v)
		}
	}
	return out
}

// opened returns the unresolved raises of type typ, one per key (the last).
func opened(vs []violations.Violation, typ string) []violations.Violation {
	idx := map[string]int{}
	var out []violations.Violation
	for _, v := range vs {
		if v.Type != typ || v.Resolved {
			continue
		}
		if i, ok := idx[v.Key]; ok {
			out[i] = v
			continue
		}
		idx[v.Key] = len(out)
		out = append(out, v)
	}
	return out
}

func resolved(vs []violations.Violation, typ string) int {
	n := 0
	for _, v := range vs {
		if v.Type == typ && v.Resolved {
			n++
		}
	}
	return n
}

// leg is a stretch of a truck's or sweeper's track.
type leg struct {
	dur        time.Duration
	speed      float64
	from, to   [2]float64 // lat, lon
	load0      float64    // load at the start
	load1      float64    // load at the end (linear)
	tipper     bool
	brush      bool
	gpsFilter  string // mark every fix refused
	noise      float64
	noSmoothIn bool
}

// track samples legs every 10 s from start, with load noise of 12 kg.
func track(dev, kind string, start time.Time, seed uint64, legs ...leg) ([]telemetry.Reading, time.Time) {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []telemetry.Reading
	t := start
	for _, l := range legs {
		n := int(l.dur / (10 * time.Second))
		for i := 0; i < n; i++ {
			f := float64(i) / math.Max(1, float64(n-1))
			lat := l.from[0] + (l.to[0]-l.from[0])*f + r.NormFloat64()*0.00002
			lon := l.from[1] + (l.to[1]-l.from[1])*f + r.NormFloat64()*0.00002
			fields := map[string]float64{"lat": lat, "lon": lon, "speed_kmh": l.speed, "hdop": 1}
			if kind == telemetry.KindTruck {
				noise := 12.0
				if l.noise != 0 {
					noise = l.noise
				}
				fields["load_kg"] = math.Round(l.load0 + (l.load1-l.load0)*f + r.NormFloat64()*noise)
			}
			rr := rd(dev, kind, t, fields)
			if kind == telemetry.KindTruck {
				rr.SetBool("tipper", l.tipper)
				rr.SetBool("ignition", true)
			} else {
				rr.SetBool("brush_on", l.brush)
			}
			if l.gpsFilter != "" {
				rr.SetString("gps_filter", l.gpsFilter)
			}
			out = append(out, rr)
			t = t.Add(10 * time.Second)
		}
	}
	return out, t
}

// every samples a fixed device every step from start for n readings; fn
// gives the fields of reading i.
func every(dev, kind string, start time.Time, step time.Duration, n int, fn func(i int) map[string]float64) []telemetry.Reading {
	var out []telemetry.Reading
	for i := 0; i < n; i++ {
		out = append(out, rd(dev, kind, start.Add(time.Duration(i)*step), fn(i)))
	}
	return out
}

// moveBy returns p moved east by m metres.
func moveBy(p [2]float64, east, north float64) [2]float64 {
	return [2]float64{p[0] + north/110540, p[1] + east/(111320*math.Cos(p[0]*math.Pi/180))}
}
