package violations_test

import (
	"context"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// toiletDay samples a toilet every minute from start for n readings with
// normal values (nobody inside), changed by fn.
func toiletDay(dev string, start time.Time, n int, fn func(i int, f map[string]float64)) []telemetry.Reading {
	return every(dev, telemetry.KindToilet, start, time.Minute, n, func(i int) map[string]float64 {
		f := map[string]float64{"nh3_mgm3": 0.1, "h2s_mgm3": 0.002, "temp_c": 18, "stalls_occupied": 0, "people_in": 1000,
			"water_l": 5000, "paper_pct": 80, "soap_pct": 80}
		if fn != nil {
			fn(i, f)
		}
		return f
	})
}

func TestToiletRules(t *testing.T) {
	dc := violations.DefaultConfig()
	// toilet-02 is class 2 (NH3 limit 1 mg/m3), toilet-01 class 1 (0.3).
	span := func(a, b int, fn func(f map[string]float64)) func(int, map[string]float64) {
		return func(i int, f map[string]float64) {
			if i >= a && i < b {
				fn(f)
			}
		}
	}
	busy := func(i int, f map[string]float64) { f["stalls_occupied"] = 1; f["people_in"] = 1000 + float64(i) }
	cases := []struct {
		name     string
		dev      string
		rs       []telemetry.Reading
		typ      string
		want     int
		resolved int
	}{
		{"ammonia over the limit for 20 min", "toilet-02", toiletDay("toilet-02", at(10, 0), 120, span(10, 30, func(f map[string]float64) { f["nh3_mgm3"] = 1.5 })),
			violations.ToiletOdour, 1, 1},
		{"hydrogen sulphide over the limit for 20 min", "toilet-02", toiletDay("toilet-02", at(10, 0), 120, span(10, 30, func(f map[string]float64) { f["h2s_mgm3"] = 0.02 })),
			violations.ToiletOdour, 1, 1},
		{"class 1 at 0.4", "toilet-01", toiletDay("toilet-01", at(10, 0), 120, span(10, 40, func(f map[string]float64) { f["nh3_mgm3"] = 0.4 })),
			violations.ToiletOdour, 1, 1},
		{"near: a short whiff of ammonia", "toilet-02", toiletDay("toilet-02", at(10, 0), 120, span(10, 15, func(f map[string]float64) { f["nh3_mgm3"] = 2 })),
			violations.ToiletOdour, 0, 0},
		{"near: class 2 at 0.4", "toilet-02", toiletDay("toilet-02", at(10, 0), 120, span(10, 40, func(f map[string]float64) { f["nh3_mgm3"] = 0.4 })),
			violations.ToiletOdour, 0, 0},
		{"hovering under the limit does not resolve", "toilet-02", toiletDay("toilet-02", at(10, 0), 100, func(i int, f map[string]float64) {
			switch {
			case i >= 10 && i < 30:
				f["nh3_mgm3"] = 1.5
			case i >= 30:
				f["nh3_mgm3"] = 0.95
			}
		}), violations.ToiletOdour, 1, 0},
		{"paper at 8 %", "toilet-02", toiletDay("toilet-02", at(10, 0), 60, span(10, 40, func(f map[string]float64) { f["paper_pct"] = 8 })),
			violations.ToiletConsumables, 1, 1},
		{"near: paper at 11 %", "toilet-02", toiletDay("toilet-02", at(10, 0), 60, func(i int, f map[string]float64) { f["paper_pct"] = 11 }),
			violations.ToiletConsumables, 0, 0},
		{"a stall occupied 35 min with nobody entering", "toilet-02", toiletDay("toilet-02", at(2, 0), 60, span(10, 45, func(f map[string]float64) {
			f["stalls_occupied"], f["people_in"] = 1, 1001
		})), violations.ToiletSafety, 1, 1},
		{"near: stalls busy for an hour with people coming and going", "toilet-02", toiletDay("toilet-02", at(10, 0), 60, busy),
			violations.ToiletSafety, 0, 0},
		{"water flowing for 40 min at night", "toilet-02", toiletDay("toilet-02", at(1, 0), 60, func(i int, f map[string]float64) {
			if i >= 10 && i < 50 {
				f["water_l"] = 5000 + float64(i-9)
			} else if i >= 50 {
				f["water_l"] = 5041
			}
		}), violations.ToiletLeak, 1, 1},
		{"near: the same flow by day", "toilet-02", toiletDay("toilet-02", at(11, 0), 60, func(i int, f map[string]float64) {
			if i >= 10 && i < 50 {
				f["water_l"] = 5000 + float64(i-9)
			} else if i >= 50 {
				f["water_l"] = 5041
			}
		}), violations.ToiletLeak, 0, 0},
		{"near: 20 min of flow at night", "toilet-02", toiletDay("toilet-02", at(1, 0), 60, func(i int, f map[string]float64) {
			if i >= 10 && i < 30 {
				f["water_l"] = 5000 + float64(i-9)
			} else if i >= 30 {
				f["water_l"] = 5021
			}
		}), violations.ToiletLeak, 0, 0},
		{"class 2 at 9 C for 40 min", "toilet-02", toiletDay("toilet-02", at(10, 0), 90, span(10, 50, func(f map[string]float64) { f["temp_c"] = 9 })),
			violations.ToiletCold, 1, 1},
		{"class 1 at 12 C for 40 min", "toilet-01", toiletDay("toilet-01", at(10, 0), 90, span(10, 50, func(f map[string]float64) { f["temp_c"] = 12 })),
			violations.ToiletCold, 1, 1},
		{"near: class 2 at 11 C", "toilet-02", toiletDay("toilet-02", at(10, 0), 90, func(i int, f map[string]float64) { f["temp_c"] = 11 }),
			violations.ToiletCold, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			all := run(t, dc, c.rs, c.rs[len(c.rs)-1].Time, c.dev)
			got := opened(all, c.typ)
			if len(got) != c.want {
				t.Fatalf("got %d %s, want %d: %+v", len(got), c.typ, c.want, got)
			}
			if n := resolved(all, c.typ); n != c.resolved {
				t.Errorf("resolved %d times, want %d", n, c.resolved)
			}
			if c.want == 1 && (len(got[0].Evidence) == 0 || !got[0].HasPos || got[0].District == "") {
				t.Errorf("missing evidence, position or district: %+v", got[0])
			}
		})
	}
	t.Run("help button", func(t *testing.T) {
		rs := toiletDay("toilet-02", at(10, 0), 30, nil)
		rs = append(rs, ev("toilet-02", telemetry.KindToilet, "help_button", at(10, 30), map[string]float64{"stall": 2}, nil),
			ev("toilet-02", telemetry.KindToilet, "help_button", at(10, 31), map[string]float64{"stall": 2}, nil))
		got := opened(run(t, dc, rs, at(11, 0), "toilet-02"), violations.ToiletSafety)
		if len(got) != 1 || got[0].Severity != violations.Critical {
			t.Errorf("two presses a minute apart: got %+v", got)
		}
	})
}

func TestDeviceOffline(t *testing.T) {
	dc := violations.DefaultConfig()
	gap := func(from, to int) []telemetry.Reading {
		var out []telemetry.Reading
		for _, r := range toiletDay("toilet-02", at(10, 0), 120, nil) {
			if m := int(r.Time.Sub(at(10, 0)).Minutes()); m < from || m >= to {
				out = append(out, r)
			}
		}
		return out
	}
	all := run(t, dc, gap(30, 50), at(12, 0), "toilet-02")
	got := opened(all, violations.DeviceOffline)
	if len(got) != 1 || !got[0].Start.Equal(at(10, 29)) || !got[0].End.Equal(at(10, 32)) || resolved(all, violations.DeviceOffline) != 1 {
		t.Errorf("20 min gap: got %+v", all)
	}
	if got := opened(run(t, dc, gap(30, 32), at(12, 0), "toilet-02"), violations.DeviceOffline); len(got) != 0 {
		t.Errorf("near: 2 min gap: got %+v", got)
	}
	// Silent for good: the clock raises it, without a resolution.
	all = run(t, dc, gap(60, 200), at(12, 0), "toilet-02")
	if got := opened(all, violations.DeviceOffline); len(got) != 1 || resolved(all, violations.DeviceOffline) != 0 {
		t.Errorf("silent since 11:00: got %+v", all)
	}

	t.Run("last will", func(t *testing.T) {
		cfg := loadDemo(t)
		col := &collector{}
		e := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 2})
		ctx := context.Background()
		if err := e.ProcessReadings(ctx, toiletDay("toilet-02", at(10, 0), 10, nil)); err != nil {
			t.Fatal(err)
		}
		e.Offline("toilet-02", at(10, 10))
		if err := e.ProcessReadings(ctx, nil); err != nil {
			t.Fatal(err)
		}
		got := opened(col.List(), violations.DeviceOffline)
		if len(got) != 1 || !got[0].Start.Equal(at(10, 9)) {
			t.Fatalf("after the last will: got %+v", col.List())
		}
		if err := e.ProcessReadings(ctx, toiletDay("toilet-02", at(10, 30), 20, nil)); err != nil {
			t.Fatal(err)
		}
		if err := e.AdvanceTo(ctx, at(10, 50)); err != nil {
			t.Fatal(err)
		}
		if n := resolved(col.List(), violations.DeviceOffline); n != 1 || len(opened(col.List(), violations.DeviceOffline)) != 1 {
			t.Errorf("back online: %d resolved, all %+v", n, col.List())
		}
	})
}

func TestLateReadings(t *testing.T) {
	cfg := loadDemo(t)
	col := &collector{}
	e := violations.NewEngine(cfg, violations.DefaultConfig(), col, violations.EngineOptions{Shards: 1, MaxAge: 2 * time.Hour})
	ctx := context.Background()
	rs := toiletDay("toilet-02", at(10, 0), 60, func(i int, f map[string]float64) {
		if i >= 10 && i < 30 {
			f["nh3_mgm3"] = 1.5
		}
	})
	// Shuffled within five minutes: each straggler re-runs the device, and
	// the verdict is the one of ordered readings.
	for i := 0; i+4 < len(rs); i += 5 {
		rs[i], rs[i+4] = rs[i+4], rs[i]
		rs[i+1], rs[i+3] = rs[i+3], rs[i+1]
	}
	if err := e.ProcessReadings(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// A reading from the middle of what is judged, published again: a
	// duplicate, passed over.
	if err := e.ProcessReadings(ctx, rs[20:21]); err != nil {
		t.Fatal(err)
	}
	// A reading from before MaxAge: counted late, left out.
	if err := e.ProcessReadings(ctx, toiletDay("toilet-02", at(7, 30), 1, nil)); err != nil {
		t.Fatal(err)
	}
	if err := e.AdvanceTo(ctx, at(12, 0)); err != nil {
		t.Fatal(err)
	}
	got := opened(col.List(), violations.ToiletOdour)
	if len(got) != 1 || !got[0].Start.Equal(at(10, 10)) {
		t.Errorf("out of order: got %+v", got)
	}
	raises := 0
	for _, v := range col.List() {
		if v.Type == violations.ToiletOdour {
			raises++
		}
	}
	if raises != 1 {
		t.Errorf("odour handed to the sink %d times, want once: %+v", raises, col.List())
	}
	if e.Late() != 1 {
		t.Errorf("late readings counted: %d, want 1", e.Late())
	}
}
