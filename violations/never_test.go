package violations_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/violations"
)

// offlines lists the device_offline violations of device in vs.
func offlines(vs []violations.Violation, device string) []violations.Violation {
	var out []violations.Violation
	for _, v := range vs {
		if v.Type == violations.DeviceOffline && v.Device == device {
			out = append(out, v)
		}
	}
	return out
}

// TestNeverReportedIsOffline: a registered toilet (expected every minute,
// offline after 3) that never reports is flagged device_offline three
// minutes after the clock first ticked it, and resolved by its first
// reading; a toilet added by a reload is judged from the first tick after
// it; a device the engine does not watch is not flagged.
func TestNeverReportedIsOffline(t *testing.T) {
	cfg := loadDemo(t)
	dc := violations.DefaultConfig()
	watched := map[string]bool{"toilet-02": true, "toilet-new": true}
	col := &collector{}
	e := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 2, Watch: func(id string) bool { return watched[id] }})
	ctx := context.Background()
	advance := func(t0 time.Time) {
		t.Helper()
		if err := e.AdvanceTo(ctx, t0); err != nil {
			t.Fatal(err)
		}
	}
	t0 := at(8, 0)
	advance(t0)
	advance(t0.Add(3 * time.Minute))
	if got := offlines(col.List(), "toilet-02"); len(got) != 0 {
		t.Fatalf("flagged at its threshold, not past it: %+v", got)
	}
	advance(t0.Add(4 * time.Minute))
	got := offlines(col.List(), "toilet-02")
	if len(got) != 1 || got[0].Resolved || !got[0].Start.Equal(t0) || !strings.Contains(got[0].Summary, "never reported") {
		t.Fatalf("toilet-02 never reporting: %+v", got)
	}
	if n := len(offlines(col.List(), "toilet-03")); n != 0 {
		t.Errorf("toilet-03 is not watched, yet flagged %d times", n)
	}

	// A device added while running: watched from the next tick.
	c2 := *cfg
	c2.Devices = append(slices.Clone(cfg.Devices), fleet.Device{ID: "toilet-new", Kind: "toilet", Class: 1, District: "south"})
	e.Reload(&c2, dc)
	t1 := t0.Add(10 * time.Minute)
	advance(t1)
	advance(t1.Add(3 * time.Minute))
	if got := offlines(col.List(), "toilet-new"); len(got) != 0 {
		t.Fatalf("toilet-new judged from before it was added: %+v", got)
	}
	advance(t1.Add(4 * time.Minute))
	if got := offlines(col.List(), "toilet-new"); len(got) != 1 || !got[0].Start.Equal(t1) {
		t.Fatalf("toilet-new never reporting: %+v", got)
	}

	// The first reading resolves it.
	first := t0.Add(20 * time.Minute)
	if err := e.ProcessReadings(ctx, toiletDay("toilet-02", first, 1, nil)); err != nil {
		t.Fatal(err)
	}
	got = offlines(col.List(), "toilet-02")
	if len(got) != 2 || !got[1].Resolved || !got[1].End.Equal(first) || got[1].Key != got[0].Key ||
		!strings.Contains(got[1].Summary, "for the first time") {
		t.Fatalf("toilet-02's first reading: %+v", got)
	}
}

// TestNeverReportedAcrossRestart: when the clock first ticked a device
// that has not reported is kept in the engine's state, so that a restart
// flags it from then, not from the new start.
func TestNeverReportedAcrossRestart(t *testing.T) {
	cfg := loadDemo(t)
	dc := violations.DefaultConfig()
	watch := func(id string) bool { return id == "toilet-02" }
	ctx := context.Background()
	a := violations.NewEngine(cfg, dc, &collector{}, violations.EngineOptions{Shards: 1, Watch: watch})
	t0 := at(8, 0)
	if err := a.AdvanceTo(ctx, t0); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot("p0", 1)
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	b := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 1, Watch: watch})
	if _, _, err := b.Restore("p0", snap); err != nil {
		t.Fatal(err)
	}
	if err := b.AdvanceTo(ctx, t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := offlines(col.List(), "toilet-02"); len(got) != 1 || !got[0].Start.Equal(t0) {
		t.Fatalf("after the restart: %+v, want one gap from %s", got, t0)
	}
}
