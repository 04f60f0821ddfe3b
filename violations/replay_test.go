package violations_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// feed is one way readings reach the engine: batches, each after the
// clock has been moved to a time.
type feed []struct {
	clock time.Time
	rs    []telemetry.Reading
}

// play runs a feed through a fresh engine, ends at end, and returns what
// the sink holds (withdrawn violations taken out) and the engine.
func play(t *testing.T, cfg *fleet.Config, f feed, end time.Time) (*collector, *violations.Engine) {
	t.Helper()
	col := &collector{}
	// Only the devices fed are watched: the rest of the fleet, never
	// heard from, would be flagged offline from the first clock tick,
	// which differs between the feeds compared.
	fed := map[string]bool{}
	for _, b := range f {
		for _, r := range b.rs {
			fed[r.Device] = true
		}
	}
	e := violations.NewEngine(cfg, violations.DefaultConfig(), col, violations.EngineOptions{Shards: 2,
		Watch: func(id string) bool { return fed[id] }})
	ctx := context.Background()
	for _, b := range f {
		if !b.clock.IsZero() {
			if err := e.AdvanceTo(ctx, b.clock); err != nil {
				t.Fatal(err)
			}
		}
		for i := range b.rs {
			if err := e.ProcessReadings(ctx, b.rs[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.AdvanceTo(ctx, end); err != nil {
		t.Fatal(err)
	}
	return col, e
}

func keys(vs []violations.Violation) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Key+map[bool]string{true: " resolved", false: ""}[v.Resolved])
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// raisedOnce fails when a key was handed to the sink unresolved more than once.
func raisedOnce(t *testing.T, vs []violations.Violation) {
	t.Helper()
	n := map[string]int{}
	for _, v := range vs {
		if !v.Resolved {
			n[v.Key]++
		}
	}
	for k, c := range n {
		if c > 1 {
			t.Errorf("%s raised %d times", k, c)
		}
	}
}

// TestAnyLatenessSameVerdict feeds a truck's trip with a dump at a farm
// live, uploaded 90 minutes and 3 hours late after live readings before it,
// and as a buffered trip arriving 29 minutes after live readings that
// follow it: every feed ends with the violations of the trip fed in order.
func TestAnyLatenessSameVerdict(t *testing.T) {
	cfg := loadDemo(t)
	before, _ := track("truck-01", telemetry.KindTruck, at(7, 50), 3,
		leg{dur: 10 * time.Minute, speed: 30, from: moveBy(farmSouth, -6000, 0), to: moveBy(farmSouth, -1500, 0), load0: 3000, load1: 3000})
	trip := stopAndDrop("truck-01", farmSouth, 3000, 1500, false) // 08:00-08:13
	after, _ := track("truck-01", telemetry.KindTruck, at(8, 13), 5,
		leg{dur: 20 * time.Minute, speed: 30, from: moveBy(farmSouth, 1500, 0), to: moveBy(farmSouth, 9000, 0), load0: 1500, load1: 1500})
	all := append(append(append([]telemetry.Reading(nil), before...), trip...), after...)
	last := all[len(all)-1].Time

	for _, c := range []struct {
		name string
		f    feed
		end  time.Time
	}{
		{"live", feed{{rs: all}}, last.Add(time.Minute)},
		{"uploaded 90 min late", feed{{rs: before}, {clock: at(9, 33), rs: append(append([]telemetry.Reading(nil), trip...), after...)}}, at(9, 34)},
		{"uploaded 3 h late", feed{{rs: before}, {clock: at(11, 13), rs: append(append([]telemetry.Reading(nil), trip...), after...)}}, at(11, 14)},
		{"live first, the trip 29 min later", feed{{rs: before}, {clock: at(8, 13), rs: after}, {clock: at(8, 42), rs: trip}}, at(8, 43)},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, _ := play(t, cfg, feed{{rs: all}}, c.end)
			col, e := play(t, cfg, c.f, c.end)
			if got, want := keys(col.List()), keys(ref.List()); got != want {
				t.Errorf("got\n%s\nwant (in order)\n%s", got, want)
			}
			if d := opened(col.List(), violations.IllegalDumping); len(d) != 1 || d[0].Severity != violations.Critical {
				t.Errorf("dump at the farm: %+v", d)
			}
			raisedOnce(t, col.List())
			if e.Late() != 0 {
				t.Errorf("late: %d", e.Late())
			}
		})
	}
}

// TestWithdrawnWhenLateReadingsFillTheGap: the clock raises device_offline
// over a silence; the buffered readings of that silence come later and the
// violation is withdrawn.
func TestWithdrawnWhenLateReadingsFillTheGap(t *testing.T) {
	cfg := loadDemo(t)
	rs, _ := track("truck-01", telemetry.KindTruck, at(8, 0), 9,
		leg{dur: 40 * time.Minute, speed: 30, from: openRoad, to: moveBy(openRoad, 9000, 0), load0: 2000, load1: 2000})
	live, buffered := rs[:60], rs[60:] // 08:00-08:10 live, then out of coverage
	col, _ := play(t, cfg, feed{{rs: live}, {clock: at(8, 40), rs: buffered}}, at(8, 40))
	w := col.Withdrawn()
	if len(w) != 1 || w[0].Type != violations.DeviceOffline {
		t.Fatalf("withdrawn: got %+v, want the device_offline of the silence", w)
	}
	if got := opened(col.List(), violations.DeviceOffline); len(got) != 0 {
		t.Errorf("device_offline still held: %+v", got)
	}
}

// TestDuplicateReadings publishes every reading twice, the second time
// marked as a duplicate fix by the GPS filters (as a QoS 1 resend is): one
// verdict, as if each came once.
func TestDuplicateReadings(t *testing.T) {
	cfg := loadDemo(t)
	trip := stopAndDrop("truck-01", farmSouth, 3000, 1500, false)
	var twice []telemetry.Reading
	for i, r := range trip {
		twice = append(twice, r)
		if i%7 == 3 { // some resent at once, the rest after later ones
			dup := r
			dup.Fields = append([]telemetry.Field(nil), r.Fields...)
			dup.SetString("gps_filter", "duplicate")
			twice = append(twice, dup)
		}
	}
	twice = append(twice, trip[:40]...)
	ref, _ := play(t, cfg, feed{{rs: trip}}, at(9, 0))
	col, _ := play(t, cfg, feed{{rs: twice}}, at(9, 0))
	if got, want := keys(col.List()), keys(ref.List()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	raisedOnce(t, col.List())
	if len(col.Withdrawn()) != 0 {
		t.Errorf("withdrawn: %+v", col.Withdrawn())
	}
}

// BenchmarkRerun measures a re-run: a truck has sent an hour or two of
// readings every 10 s, then a reading from the start of that span arrives;
// the device is re-run over all of it. Reported per re-run and per reading
// gone through again, with the replay memory the device holds.
func BenchmarkRerun(b *testing.B) {
	cfg := loadDemo(b)
	for _, span := range []time.Duration{30 * time.Minute, 90 * time.Minute} {
		b.Run(span.String(), func(b *testing.B) {
			rs, _ := track("truck-01", telemetry.KindTruck, at(8, 0), 11,
				leg{dur: span, speed: 30, from: openRoad, to: moveBy(openRoad, 30000, 0), load0: 2000, load1: 2000})
			late := rs[1]
			late.Time = late.Time.Add(-5 * time.Second)
			rs = append(rs[:1:1], rs[2:]...) // the late one is missing at first
			ctx := context.Background()
			var reran float64
			for b.Loop() {
				b.StopTimer()
				e := violations.NewEngine(cfg, violations.DefaultConfig(), &collector{}, violations.EngineOptions{Shards: 1})
				if err := e.ProcessReadings(ctx, rs); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := e.ProcessReadings(ctx, []telemetry.Reading{late}); err != nil {
					b.Fatal(err)
				}
				reran += float64(len(rs) + 1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/reran, "ns/reading-rerun")
			b.ReportMetric(float64(len(rs)), "readings")
		})
	}
}

// TestRerunAcrossTrims keeps a toilet's replay history small, so that it is
// trimmed every few readings, and feeds a day in blocks of five readings
// with each pair of blocks swapped: every second block is late and re-runs
// the device from a mark. The verdict is the one of the day fed in order.
func TestRerunAcrossTrims(t *testing.T) {
	cfg := loadDemo(t)
	dc := violations.DefaultConfig()
	dc.ReplayBytes = 16 << 10
	rs := toiletDay("toilet-02", at(8, 0), 240, func(i int, f map[string]float64) {
		if (i >= 30 && i < 70) || (i >= 150 && i < 200) {
			f["nh3_mgm3"] = 1.5
		}
		if i >= 100 && i < 140 {
			f["temp_c"] = 8
		}
	})
	end := rs[len(rs)-1].Time.Add(time.Minute)
	run := func(rs []telemetry.Reading, reg *prometheus.Registry) []violations.Violation {
		col := &collector{}
		e := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 1, Registerer: reg})
		for i := range rs {
			if err := e.ProcessReadings(context.Background(), rs[i:i+1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.AdvanceTo(context.Background(), end); err != nil {
			t.Fatal(err)
		}
		if e.Late() != 0 {
			t.Errorf("late: %d", e.Late())
		}
		return col.List()
	}
	want := run(rs, prometheus.NewRegistry())
	var swapped []telemetry.Reading
	for i := 0; i < len(rs); i += 10 {
		swapped = append(swapped, rs[i+5:i+10]...)
		swapped = append(swapped, rs[i:i+5]...)
	}
	reg := prometheus.NewRegistry()
	got := run(swapped, reg)
	if keys(got) != keys(want) || keys(want) == "" {
		t.Errorf("swapped blocks:\n%s\nin order:\n%s", keys(got), keys(want))
	}
	reruns := 0.0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sanigate_violation_reruns_total" {
			reruns = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if reruns < 20 {
		t.Errorf("%g re-runs, want one for each late block", reruns)
	}
}
