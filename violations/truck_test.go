package violations_test

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

var (
	farmSouth = [2]float64{39.856, 116.49}
	kwPlant   = [2]float64{39.862, 116.313}
	tsCentral = [2]float64{39.925, 116.38}
	openRoad  = [2]float64{39.935, 116.45}
)

// stopAndDrop drives to p, stops, and loses drop kg over two minutes there.
func stopAndDrop(dev string, p [2]float64, load, drop float64, tipper bool) []telemetry.Reading {
	from := moveBy(p, -1500, 0)
	rs, _ := track(dev, telemetry.KindTruck, at(8, 0), 7,
		leg{dur: 3 * time.Minute, speed: 30, from: from, to: p, load0: load, load1: load},
		leg{dur: 2 * time.Minute, speed: 0, from: p, to: p, load0: load, load1: load},
		leg{dur: 2 * time.Minute, speed: 0, from: p, to: p, load0: load, load1: load - drop, tipper: tipper},
		leg{dur: 3 * time.Minute, speed: 0, from: p, to: p, load0: load - drop, load1: load - drop},
		leg{dur: 3 * time.Minute, speed: 30, from: p, to: moveBy(p, 1500, 0), load0: load - drop, load1: load - drop},
	)
	return rs
}

func TestTruckStops(t *testing.T) {
	dc := violations.DefaultConfig()
	spike := stopAndDrop("truck-01", openRoad, 3000, 0, false)
	spike[20].SetFloat("load_kg", 2400) // one sample off while stopped
	cases := []struct {
		name     string
		device   string
		rs       []telemetry.Reading
		typ      string
		want     int
		severity string
		site     string
	}{
		{"dump at a farm", "truck-01", stopAndDrop("truck-01", farmSouth, 3000, 1500, false), violations.IllegalDumping, 1, violations.Critical, "farm-south"},
		{"dump on the road", "truck-01", stopAndDrop("truck-01", openRoad, 3000, 800, false), violations.IllegalDumping, 1, violations.Major, ""},
		{"kitchen waste at the transfer station", "truck-01", stopAndDrop("truck-01", tsCentral, 3000, 2900, true), violations.WrongSite, 1, violations.Major, "ts-central"},
		{"near: legal unload in the kitchen-waste plant", "truck-01", stopAndDrop("truck-01", kwPlant, 3000, 3000, true), violations.IllegalDumping, 0, "", ""},
		{"near: legal unload in the plant is no wrong site", "truck-01", stopAndDrop("truck-01", kwPlant, 3000, 3000, true), violations.WrongSite, 0, "", ""},
		{"near: recyclables tipped at the transfer station", "truck-05", stopAndDrop("truck-05", tsCentral, 2000, 2000, true), violations.IllegalDumping, 0, "", ""},
		{"near: recyclables tipped at the transfer station, no wrong site", "truck-05", stopAndDrop("truck-05", tsCentral, 2000, 2000, true), violations.WrongSite, 0, "", ""},
		{"near: 250 kg drop", "truck-01", stopAndDrop("truck-01", openRoad, 3000, 250, false), violations.IllegalDumping, 0, "", ""},
		{"near: one sample off at a red light", "truck-01", spike, violations.IllegalDumping, 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := opened(run(t, dc, c.rs, at(9, 0), c.device), c.typ)
			if len(got) != c.want {
				t.Fatalf("got %d %s, want %d: %+v", len(got), c.typ, c.want, got)
			}
			if c.want == 0 {
				return
			}
			v := got[0]
			if v.Severity != c.severity || v.Site != c.site {
				t.Errorf("got severity %s site %q, want %s %q", v.Severity, v.Site, c.severity, c.site)
			}
			if !v.HasPos || v.District == "" || len(v.Evidence) < 3 {
				t.Errorf("missing position, district or evidence: %+v", v)
			}
			if !strings.Contains(v.Evidence[0].Note, "before") || !strings.Contains(v.Evidence[len(v.Evidence)-2].Note, "after") {
				t.Errorf("evidence does not show before and after: %+v", v.Evidence)
			}
			// the drop began at 08:05
			if d := v.Start.Sub(at(8, 5)); d < -time.Minute || d > time.Minute {
				t.Errorf("start %s, want about 08:05", v.Start)
			}
		})
	}
}

func TestSpillage(t *testing.T) {
	dc := violations.DefaultConfig()
	a := [2]float64{39.935, 116.40}
	b := moveBy(a, 5000, 0)
	drive := func(loss float64, tipper bool) []telemetry.Reading {
		rs, _ := track("truck-01", telemetry.KindTruck, at(8, 0), 3,
			leg{dur: 10 * time.Minute, speed: 30, from: a, to: b, load0: 3000, load1: 3000 - loss, tipper: tipper})
		return rs
	}
	slowing := drive(0, false)
	for i := 20; i < 24; i++ {
		slowing[i].SetFloat("speed_kmh", 4) // a crossing
	}
	cases := []struct {
		name string
		rs   []telemetry.Reading
		want int
	}{
		{"120 kg over 5 km", drive(120, false), 1},
		{"near: 30 kg over 5 km", drive(30, false), 0},
		{"near: tipper on", drive(120, true), 0},
		{"near: steady load, slowing at a crossing", slowing, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := opened(run(t, dc, c.rs, at(9, 0), "truck-01"), violations.Spillage)
			if len(got) != c.want {
				t.Fatalf("got %d, want %d: %+v", len(got), c.want, got)
			}
			if c.want == 1 && (len(got[0].Geometry) == 0 || !got[0].HasPos) {
				t.Errorf("no geometry or position: %+v", got[0])
			}
		})
	}
}

func TestOverload(t *testing.T) {
	dc := violations.DefaultConfig()
	a := [2]float64{39.935, 116.40}
	drive := func(load float64, d time.Duration) []telemetry.Reading {
		rs, _ := track("truck-01", telemetry.KindTruck, at(8, 0), 5,
			leg{dur: d, speed: 30, from: a, to: moveBy(a, 30*d.Hours()*1000, 0), load0: load, load1: load},
			leg{dur: 5 * time.Minute, speed: 0, from: kwPlant, to: kwPlant, load0: load, load1: 0, tipper: true},
			leg{dur: 3 * time.Minute, speed: 30, from: kwPlant, to: moveBy(kwPlant, 1000, 0), load0: 0, load1: 0})
		return rs
	}
	cases := []struct {
		name string
		rs   []telemetry.Reading
		want int
	}{
		{"110 % for 5 min", drive(8800, 5*time.Minute), 1},
		{"near: 104 % for 10 min", drive(8300, 10*time.Minute), 0},
		{"near: 110 % for 90 s", drive(8800, 90*time.Second), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			all := run(t, dc, c.rs, at(9, 0), "truck-01")
			got := opened(all, violations.Overload)
			if len(got) != c.want {
				t.Fatalf("got %d, want %d: %+v", len(got), c.want, got)
			}
			if c.want == 1 {
				if resolved(all, violations.Overload) != 1 {
					t.Errorf("not resolved after unloading")
				}
				if got[0].End.Sub(got[0].Start) != 2*time.Minute {
					t.Errorf("span %s, want 2m", got[0].End.Sub(got[0].Start))
				}
			}
		})
	}
}

func TestMixedCollection(t *testing.T) {
	dc := violations.DefaultConfig()
	pickup := func(bin string) []telemetry.Reading {
		return []telemetry.Reading{ev("truck-01", telemetry.KindTruck, "pickup", at(3, 0),
			map[string]float64{"lat": 39.9, "lon": 116.4, "load_kg": 1000}, map[string]string{"bin": bin})}
	}
	if got := opened(run(t, dc, pickup("bin-0002"), at(4, 0), "truck-01"), violations.MixedCollection); len(got) != 1 || got[0].Place != "bin-0002" {
		t.Errorf("kitchen truck lifting a recyclable bin: got %+v", got)
	}
	if got := opened(run(t, dc, pickup("bin-0005"), at(4, 0), "truck-01"), violations.MixedCollection); len(got) != 0 {
		t.Errorf("near: kitchen truck lifting a kitchen bin: got %+v", got)
	}
}

func TestMissedCollection(t *testing.T) {
	dc := violations.DefaultConfig()
	cfg := loadDemo(t)
	rt, _ := cfg.Map.CollectionRoute("collect-01")
	day := func(skip int) []telemetry.Reading {
		// The truck reports every minute from 05:00 to 10:30 and lifts the
		// bins of its route from 06:10, skipping the last ones.
		var rs []telemetry.Reading
		for m := 0; m <= 330; m++ {
			rs = append(rs, rd("truck-01", telemetry.KindTruck, at(5, m), map[string]float64{"lat": 39.9, "lon": 116.4, "speed_kmh": 20, "load_kg": 500}))
		}
		for i, b := range rt.Bins[:len(rt.Bins)-skip] {
			rs = append(rs, ev("truck-01", telemetry.KindTruck, "pickup", at(6, 10+5*i).Add(time.Second), nil, map[string]string{"bin": b}))
		}
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Time.Before(rs[j].Time) })
		return rs
	}
	all := run(t, dc, day(2), at(11, 0), "truck-01")
	got := opened(all, violations.MissedRoute)
	if len(got) != 1 || got[0].Route != "collect-01" || !got[0].Start.Equal(at(6, 0)) || len(got[0].Geometry) == 0 {
		t.Fatalf("two bins skipped: got %+v", got)
	}
	if !strings.Contains(got[0].Summary, "left 2 of 12") {
		t.Errorf("summary %q", got[0].Summary)
	}
	if got := opened(run(t, dc, day(0), at(11, 0), "truck-01"), violations.MissedRoute); len(got) != 0 {
		t.Errorf("near: every bin lifted: got %+v", got)
	}
}
