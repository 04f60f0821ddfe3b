package violations_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// signal samples the same condition at a given step: fn gives the fields at
// an offset from the start.
type signal func(off time.Duration) map[string]float64

func sampled(dev, kind string, start time.Time, span, step time.Duration, fn signal) []telemetry.Reading {
	var out []telemetry.Reading
	for off := time.Duration(0); off < span; off += step {
		r := rd(dev, kind, start.Add(off), fn(off))
		if kind == telemetry.KindTruck {
			r.SetBool("ignition", true)
		}
		out = append(out, r)
	}
	return out
}

// blocks alternates a and b every 5 minutes over [from, to), base elsewhere.
func blocks(off, from, to time.Duration, a, b, base float64) float64 {
	if off < from || off >= to {
		return base
	}
	if (off-from)/(5*time.Minute)%2 == 0 {
		return a
	}
	return b
}

// TestRateIndependence feeds each duration rule the same condition at two
// reporting rates: the verdict must not change. The rates stay within the
// gap bound of each kind (three expected intervals: 15 min for a bin, 3 min
// for a toilet, a minute for a truck); a slower device is in a gap.
func TestRateIndependence(t *testing.T) {
	dc := violations.DefaultConfig()
	bin := func(fill, tilt func(time.Duration) float64) signal {
		return func(off time.Duration) map[string]float64 {
			return map[string]float64{"fill_pct": fill(off), "tilt_deg": tilt(off), "temp_c": 15, "battery_pct": 80,
				"contamination_pct": 5, "lat": 39.857, "lon": 116.311}
		}
	}
	flat := func(v float64) func(time.Duration) float64 { return func(time.Duration) float64 { return v } }
	toilet := func(nh3, temp, stalls func(time.Duration) float64) signal {
		return func(off time.Duration) map[string]float64 {
			return map[string]float64{"nh3_mgm3": nh3(off), "h2s_mgm3": 0.003, "temp_c": temp(off), "stalls_occupied": stalls(off),
				"people_in": 100, "paper_pct": 80, "soap_pct": 80}
		}
	}
	a := [2]float64{39.935, 116.40}
	truck := func(load float64, stopEvery bool) signal {
		return func(off time.Duration) map[string]float64 {
			speed := 30.0
			if stopEvery && off%(90*time.Second) >= 60*time.Second {
				speed = 0 // a red light every 90 s
			}
			p := moveBy(a, off.Seconds()*5, 0)
			return map[string]float64{"lat": p[0], "lon": p[1], "speed_kmh": speed, "load_kg": load, "hdop": 1}
		}
	}
	cases := []struct {
		name   string
		dev    string
		kind   string
		span   time.Duration
		steps  []time.Duration
		fn     signal
		typ    string
		want   int
		inText string
	}{
		{"bin 91/89 % every 5 min for 3 h", "bin-0001", telemetry.KindBin, 4 * time.Hour, []time.Duration{5 * time.Minute, time.Minute},
			bin(func(off time.Duration) float64 { return blocks(off, 30*time.Minute, 210*time.Minute, 91, 89, 40) }, flat(1)),
			violations.BinOverflow, 1, ""},
		{"near: bin 89 % for 4 h", "bin-0001", telemetry.KindBin, 4 * time.Hour, []time.Duration{5 * time.Minute, time.Minute},
			bin(flat(89), flat(1)), violations.BinOverflow, 0, ""},
		{"near: bin full for 90 min, twice, emptied between", "bin-0001", telemetry.KindBin, 4 * time.Hour, []time.Duration{5 * time.Minute, time.Minute},
			bin(func(off time.Duration) float64 {
				if off%(2*time.Hour) < 90*time.Minute {
					return 95
				}
				return 10
			}, flat(1)), violations.BinOverflow, 0, ""},
		{"bin tilted 50/40 degrees for 20 min", "bin-0001", telemetry.KindBin, time.Hour, []time.Duration{5 * time.Minute, time.Minute},
			bin(flat(40), func(off time.Duration) float64 { return blocks(off, 10*time.Minute, 30*time.Minute, 50, 40, 1) }),
			violations.BinDamaged, 1, ""},
		{"near: bin tilted for 4 min", "bin-0001", telemetry.KindBin, time.Hour, []time.Duration{5 * time.Minute, time.Minute},
			bin(flat(40), func(off time.Duration) float64 {
				if off >= 10*time.Minute && off < 14*time.Minute {
					return 60
				}
				return 1
			}), violations.BinDamaged, 0, ""},
		{"ammonia 1.2/0.95 x the limit for 30 min", "toilet-02", telemetry.KindToilet, 2 * time.Hour, []time.Duration{30 * time.Second, 2 * time.Minute},
			toilet(func(off time.Duration) float64 { return blocks(off, 10*time.Minute, 40*time.Minute, 1.2, 0.95, 0.3) }, flat(18), flat(0)),
			violations.ToiletOdour, 1, "NH3 1.20 > 1.00"},
		{"near: ammonia over the limit for 5 min", "toilet-02", telemetry.KindToilet, 2 * time.Hour, []time.Duration{30 * time.Second, 2 * time.Minute},
			toilet(func(off time.Duration) float64 { return blocks(off, 10*time.Minute, 15*time.Minute, 1.6, 1.6, 0.3) }, flat(18), flat(0)),
			violations.ToiletOdour, 0, ""},
		{"cold 9.5/10.5 C for an hour", "toilet-02", telemetry.KindToilet, 2 * time.Hour, []time.Duration{30 * time.Second, 2 * time.Minute},
			toilet(flat(0.3), func(off time.Duration) float64 { return blocks(off, 10*time.Minute, 70*time.Minute, 9.5, 10.5, 18) }, flat(0)),
			violations.ToiletCold, 1, ""},
		{"a stall occupied for 40 min", "toilet-02", telemetry.KindToilet, 2 * time.Hour, []time.Duration{30 * time.Second, 2 * time.Minute},
			toilet(flat(0.3), flat(18), func(off time.Duration) float64 {
				if off >= 10*time.Minute && off < 50*time.Minute {
					return 1
				}
				return 0
			}), violations.ToiletSafety, 1, ""},
		{"overloaded with a red light every 90 s", "truck-01", telemetry.KindTruck, 5 * time.Minute, []time.Duration{10 * time.Second, 30 * time.Second},
			truck(8800, true), violations.Overload, 1, ""},
		{"near: overloaded for 90 s", "truck-01", telemetry.KindTruck, 90 * time.Second, []time.Duration{10 * time.Second, 30 * time.Second},
			truck(8800, false), violations.Overload, 0, ""},
	}
	for _, c := range cases {
		for _, step := range c.steps {
			t.Run(fmt.Sprintf("%s/every %s", c.name, step), func(t *testing.T) {
				rs := sampled(c.dev, c.kind, at(1, 0), c.span, step, c.fn)
				got := opened(run(t, dc, rs, at(1, 0).Add(c.span+time.Hour), c.dev), c.typ)
				if len(got) != c.want {
					t.Fatalf("got %d %s, want %d: %+v", len(got), c.typ, c.want, got)
				}
				if c.want == 1 && !strings.Contains(got[0].Summary, c.inText) {
					t.Errorf("summary %q, want it to name %q", got[0].Summary, c.inText)
				}
			})
		}
	}
}

func TestOdourNamesTheGas(t *testing.T) {
	dc := violations.DefaultConfig()
	cases := []struct {
		name     string
		nh3, h2s float64
		want     []string
		not      string
	}{
		{"ammonia", 1.6, 0.003, []string{"NH3 1.60 > 1.00 mg/m3"}, "H2S"},
		{"hydrogen sulphide", 0.3, 0.02, []string{"H2S 0.020 > 0.010 mg/m3"}, "NH3"},
		{"both", 1.6, 0.02, []string{"NH3 1.60 > 1.00", "H2S 0.020 > 0.010"}, "@"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := every("toilet-02", telemetry.KindToilet, at(1, 0), time.Minute, 40, func(i int) map[string]float64 {
				return map[string]float64{"nh3_mgm3": c.nh3, "h2s_mgm3": c.h2s}
			})
			got := opened(run(t, dc, rs, at(3, 0), "toilet-02"), violations.ToiletOdour)
			if len(got) != 1 {
				t.Fatalf("got %d, want 1: %+v", len(got), got)
			}
			for _, w := range c.want {
				if !strings.Contains(got[0].Summary, w) {
					t.Errorf("summary %q does not name %q", got[0].Summary, w)
				}
			}
			if strings.Contains(got[0].Summary, c.not) {
				t.Errorf("summary %q names %q, which stayed under its limit", got[0].Summary, c.not)
			}
		})
	}
}

// TestOfflineVehicleDistrict: a vehicle's offline violation is placed
// where it was last seen, and resolved there. The vehicle falls silent in
// the south at 08:10, reports from the north at 09:00 for a minute, then
// falls silent again until the end: two gaps, each in the district of its
// last fix.
func TestOfflineVehicleDistrict(t *testing.T) {
	dc := violations.DefaultConfig()
	south := [2]float64{39.87, 116.42}
	for _, c := range []struct {
		dev, kind string
	}{{"truck-01", telemetry.KindTruck}, {"sweeper-01", telemetry.KindSweeper}} {
		t.Run(c.dev, func(t *testing.T) {
			rs, _ := track(c.dev, c.kind, at(8, 0), 5, leg{dur: 10 * time.Minute, speed: 20, from: south, to: moveBy(south, 2000, 0)})
			back, _ := track(c.dev, c.kind, at(9, 0), 5, leg{dur: time.Minute, speed: 20, from: [2]float64{39.97, 116.42}, to: [2]float64{39.97, 116.43}})
			all := run(t, dc, append(rs, back...), at(10, 0), c.dev)
			got := opened(all, violations.DeviceOffline)
			if len(got) != 2 {
				t.Fatalf("got %d, want 2: %+v", len(got), got)
			}
			for i, want := range []struct {
				start    time.Time
				district string
			}{{at(8, 0).Add(590 * time.Second), "south"}, {at(9, 0).Add(50 * time.Second), "north"}} {
				if !got[i].Start.Equal(want.start) || got[i].District != want.district || !got[i].HasPos {
					t.Errorf("gap %d: start %s, district %q (position %v), want %s in %s, where it was last seen",
						i, got[i].Start.Format(time.TimeOnly), got[i].District, got[i].HasPos, want.start.Format(time.TimeOnly), want.district)
				}
			}
			for _, v := range all {
				if v.Type == violations.DeviceOffline && v.Resolved && v.Key == got[0].Key && v.District != "south" {
					t.Errorf("resolved in district %q, want south, where it was raised", v.District)
				}
			}
			if resolved(all, violations.DeviceOffline) != 1 {
				t.Errorf("%d resolved, want 1: the first gap, when it came back", resolved(all, violations.DeviceOffline))
			}
		})
	}
}

// TestResendsCountOnce feeds every reading twice (as QoS 1 resends) and
// expects the verdicts of the single feed.
func TestResendsCountOnce(t *testing.T) {
	dc := violations.DefaultConfig()
	twice := func(rs []telemetry.Reading) []telemetry.Reading {
		var out []telemetry.Reading
		for _, r := range rs {
			out = append(out, r, r)
		}
		return out
	}
	contam := func(n int) []telemetry.Reading {
		return binDay(20, func(i int, f map[string]float64) {
			if i >= 5 && i < 5+n {
				f["contamination_pct"] = 30
			}
		})
	}
	cases := []struct {
		name   string
		device string
		rs     []telemetry.Reading
		typ    string
		want   int
	}{
		{"near: two readings of contamination", "bin-0001", contam(2), violations.SortingContamination, 0},
		{"three readings of contamination", "bin-0001", contam(3), violations.SortingContamination, 1},
		{"near: one reading of low battery", "bin-0001", binDay(20, func(i int, f map[string]float64) {
			if i == 5 {
				f["battery_pct"] = 10
			}
		}), violations.LowBattery, 0},
		{"dump on the road", "truck-01", stopAndDrop("truck-01", openRoad, 3000, 800, false), violations.IllegalDumping, 1},
		{"near: 250 kg drop", "truck-01", stopAndDrop("truck-01", openRoad, 3000, 250, false), violations.IllegalDumping, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			once := opened(run(t, dc, c.rs, at(9, 0), c.device), c.typ)
			got := opened(run(t, dc, twice(c.rs), at(9, 0), c.device), c.typ)
			if len(got) != c.want || len(once) != c.want {
				t.Fatalf("got %d with resends, %d without, want %d: %+v", len(got), len(once), c.want, got)
			}
			for i := range got {
				if got[i].Key != once[i].Key {
					t.Errorf("key %s with resends, %s without", got[i].Key, once[i].Key)
				}
			}
		})
	}
}
