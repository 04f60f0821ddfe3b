package violations_test

import (
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// binDay samples bin-0001 every 5 minutes from 01:00 for n readings with
// normal values, changed by fn.
func binDay(n int, fn func(i int, f map[string]float64)) []telemetry.Reading {
	return every("bin-0001", telemetry.KindBin, at(1, 0), 5*time.Minute, n, func(i int) map[string]float64 {
		f := map[string]float64{"fill_pct": 40, "temp_c": 15, "tilt_deg": 1, "battery_pct": 80, "contamination_pct": 5,
			"lat": 39.857, "lon": 116.311}
		if fn != nil {
			fn(i, f)
		}
		return f
	})
}

func TestBinRules(t *testing.T) {
	dc := violations.DefaultConfig()
	withEvent := func(rs []telemetry.Reading, e telemetry.Reading) []telemetry.Reading {
		out := append([]telemetry.Reading(nil), rs...)
		for i := range out {
			if out[i].Time.After(e.Time) {
				return append(out[:i], append([]telemetry.Reading{e}, rs[i:]...)...)
			}
		}
		return append(out, e)
	}
	fullFor := func(from, to int) func(int, map[string]float64) {
		return func(i int, f map[string]float64) {
			if i >= from && i < to {
				f["fill_pct"] = 95
			}
		}
	}
	movedGPS := binDay(40, func(i int, f map[string]float64) {
		if i >= 10 && i < 20 {
			f["lon"] = 116.3125 // about 130 m east
		}
	})
	refused := binDay(40, func(i int, f map[string]float64) {
		if i >= 10 && i < 20 {
			f["lon"] = 116.3125
		}
	})
	for i := 10; i < 20; i++ {
		refused[i].SetString("gps_filter", "jump")
	}
	cases := []struct {
		name     string
		rs       []telemetry.Reading
		typ      string
		want     int
		severity string
		resolved int
	}{
		{"full for 3 h, then emptied", binDay(60, fullFor(10, 46)), violations.BinOverflow, 1, violations.Minor, 1},
		{"full for 9 h", binDay(140, fullFor(10, 130)), violations.BinOverflow, 1, violations.Major, 1},
		{"near: 89 % for 4 h", binDay(60, func(i int, f map[string]float64) { f["fill_pct"] = 89 }), violations.BinOverflow, 0, "", 0},
		{"near: one reading at 99 %", binDay(60, func(i int, f map[string]float64) {
			if i == 20 {
				f["fill_pct"] = 99
			}
		}), violations.BinOverflow, 0, "", 0},
		{"hovering at the limit raises once", binDay(80, func(i int, f map[string]float64) {
			if i >= 10 {
				f["fill_pct"] = []float64{91, 88, 90.5, 85, 92}[i%5]
			}
		}), violations.BinOverflow, 1, violations.Minor, 0},
		{"emptied ends it", withEvent(binDay(60, fullFor(10, 49)), ev("bin-0001", telemetry.KindBin, "emptied", at(5, 0), nil, nil)),
			violations.BinOverflow, 1, violations.Minor, 1},
		{"75 C twice", binDay(40, func(i int, f map[string]float64) {
			if i == 20 || i == 21 {
				f["temp_c"] = 75
			}
		}), violations.BinFire, 1, violations.Critical, 1},
		{"rising 15 C in 10 min", binDay(40, func(i int, f map[string]float64) {
			if i >= 20 && i < 24 {
				f["temp_c"] = 15 + float64(i-19)*12
			}
		}), violations.BinFire, 1, violations.Critical, 1},
		{"fire alarm", withEvent(binDay(40, nil), ev("bin-0001", telemetry.KindBin, "fire_alarm", at(2, 1), map[string]float64{"temp_c": 40}, nil)),
			violations.BinFire, 1, violations.Critical, 1},
		{"near: one reading at 75 C", binDay(40, func(i int, f map[string]float64) {
			if i == 20 {
				f["temp_c"] = 75
			}
		}), violations.BinFire, 0, "", 0},
		{"tilted 60 degrees for 20 min", binDay(40, func(i int, f map[string]float64) {
			if i >= 10 && i < 14 {
				f["tilt_deg"] = 60
			}
		}), violations.BinDamaged, 1, violations.Minor, 1},
		{"near: tilted for one reading", binDay(40, func(i int, f map[string]float64) {
			if i == 10 {
				f["tilt_deg"] = 60
			}
		}), violations.BinDamaged, 0, "", 0},
		{"moved 130 m", movedGPS, violations.BinDamaged, 1, violations.Minor, 1},
		{"near: a far fix refused by the GPS filters", refused, violations.BinDamaged, 0, "", 0},
		{"near: GPS jitter of 20 m", binDay(40, func(i int, f map[string]float64) { f["lat"] += float64(i%3-1) * 0.00018 }),
			violations.BinDamaged, 0, "", 0},
		{"contamination on three readings", binDay(40, func(i int, f map[string]float64) {
			if i >= 10 && i < 13 {
				f["contamination_pct"] = 25
			}
		}), violations.SortingContamination, 1, violations.Minor, 1},
		{"near: contamination on two readings", binDay(40, func(i int, f map[string]float64) {
			if i == 10 || i == 11 || i == 13 {
				f["contamination_pct"] = 25
			}
		}), violations.SortingContamination, 0, "", 0},
		{"battery at 12 %", binDay(40, func(i int, f map[string]float64) {
			if i >= 10 {
				f["battery_pct"] = 12
			}
		}), violations.LowBattery, 1, violations.Minor, 0},
		{"near: battery at 16 %", binDay(40, func(i int, f map[string]float64) { f["battery_pct"] = 16 }), violations.LowBattery, 0, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end := c.rs[len(c.rs)-1].Time // a silent bin stays full: stop the clock with the data
			all := run(t, dc, c.rs, end, "bin-0001")
			got := opened(all, c.typ)
			if len(got) != c.want {
				t.Fatalf("got %d %s, want %d: %+v", len(got), c.typ, c.want, got)
			}
			if c.want == 0 {
				return
			}
			if got[0].Severity != c.severity || len(got[0].Evidence) == 0 || got[0].District != "south" {
				t.Errorf("severity %s (want %s), evidence %d, district %q", got[0].Severity, c.severity, len(got[0].Evidence), got[0].District)
			}
			if n := resolved(all, c.typ); n != c.resolved {
				t.Errorf("resolved %d times, want %d", n, c.resolved)
			}
		})
	}
}
