package violations_test

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// appendAll appends each reading as its own record and returns the spool's end.
func appendAll(t *testing.T, sp *spool.Spool, rs []telemetry.Reading) int64 {
	t.Helper()
	for i := range rs {
		if err := sp.Append(telemetry.AppendLine(nil, &rs[i]), i == len(rs)-1); err != nil {
			t.Fatal(err)
		}
	}
	return sp.Stats().Bytes
}

// TestForeignState removes the spool folder and keeps the state folder: the
// state of the old spool must not be restored onto the new one.
func TestForeignState(t *testing.T) {
	cfg := loadDemo(t)
	dc := violations.DefaultConfig()
	dir, state := t.TempDir(), t.TempDir()
	opts := func(clk *clock) violations.EngineOptions {
		return violations.EngineOptions{Shards: 2, StateDir: state, Now: clk.now, Tick: 5 * time.Millisecond,
			Checkpoint: 10 * time.Millisecond, Registerer: prometheus.NewRegistry()}
	}

	sp, _, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := &collector{}
	end := appendAll(t, sp, toiletDay("toilet-02", at(10, 0), 90, nil))
	runUntil(t, violations.NewEngine(cfg, dc, first, opts(&clock{t: at(11, 30)})), sp, end)
	sp.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	// A new spool holding an earlier hour with an odour episode: judged as
	// new, not as late readings behind the old state.
	sp, _, err = spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	end = appendAll(t, sp, toiletDay("toilet-02", at(10, 0), 60, func(i int, f map[string]float64) {
		if i >= 20 && i < 50 {
			f["nh3_mgm3"] = 1.5
		}
	}))
	col := &collector{}
	e := violations.NewEngine(cfg, dc, col, opts(&clock{t: at(11, 0)}))
	runUntil(t, e, sp, end)
	if e.Late() != 0 {
		t.Errorf("%d readings of the new spool judged late: the old spool's state was restored", e.Late())
	}
	if got := opened(col.List(), violations.ToiletOdour); len(got) != 1 || !got[0].Start.Equal(at(10, 20)) {
		t.Errorf("odour on the new spool: got %+v", got)
	}
}

// TestDerivedRecordsSkipped appends the gateway's own records (a violation,
// as AppendReserved does, and one from before records were typed) between
// readings: the detectors see only the readings.
func TestDerivedRecordsSkipped(t *testing.T) {
	cfg := loadDemo(t)
	dir := t.TempDir()
	sp, _, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	rs := toiletDay("toilet-02", at(10, 0), 30, nil)
	v := violations.Violation{Key: "toilet_odour/toilet-02/x", Type: violations.ToiletOdour, Severity: violations.Major,
		Device: "toilet-02", Kind: telemetry.KindToilet, Start: at(10, 1), End: at(10, 2), Summary: "s"}
	for i := range rs {
		if err := sp.Append(telemetry.AppendLine(nil, &rs[i]), false); err != nil {
			t.Fatal(err)
		}
		if err := sp.AppendReserved(violations.AppendLine(nil, &v)); err != nil {
			t.Fatal(err)
		}
	}
	// An untyped derived line, as segments from before typing hold.
	if err := sp.Append(violations.AppendCoverageLine(nil, &violations.CoverageReport{Route: "r", Device: "sweeper-04",
		Start: at(10, 0), End: at(10, 30)}), true); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := violations.NewEngine(cfg, violations.DefaultConfig(), &collector{}, violations.EngineOptions{Shards: 1,
		Now: (&clock{t: at(10, 30)}).now, Tick: 5 * time.Millisecond, Checkpoint: 10 * time.Millisecond, Registerer: reg})
	runUntil(t, e, sp, sp.Stats().Bytes)
	if e.Late() != 0 {
		t.Errorf("late readings: %d, want 0", e.Late())
	}
	if got := counter(t, reg, "sanigate_violation_readings_total"); got != 30 {
		t.Errorf("readings seen by the detectors: %g, want 30", got)
	}
	if got := counter(t, reg, "sanigate_violation_derived_records_total"); got != 31 {
		t.Errorf("derived records passed over: %g, want 31", got)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
