package violations_test

import (
	"context"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// A fire alarm and a help button are raised at once, without waiting the
// lateness window that orders other readings.
func TestUrgentEventsDoNotWait(t *testing.T) {
	cfg := loadDemo(t)
	col := &collector{}
	e := violations.NewEngine(cfg, violations.DefaultConfig(), col, violations.EngineOptions{})
	now := time.Now()
	ctx := context.Background()
	for _, r := range []telemetry.Reading{
		rd("bin-0001", "bin", now.Add(-time.Minute), map[string]float64{"fill_pct": 40, "temp_c": 20}),
		ev("bin-0001", "bin", "fire_alarm", now, nil, nil),
		ev("toilet-01", "toilet", "help_button", now, map[string]float64{"stall": 2}, nil),
	} {
		if err := e.ProcessReadings(ctx, []telemetry.Reading{r}); err != nil {
			t.Fatal(err)
		}
	}
	// No AdvanceTo: the watermark has not moved past these readings.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (len(opened(col.List(), violations.BinFire)) == 0 || len(opened(col.List(), violations.ToiletSafety)) == 0) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(opened(col.List(), violations.BinFire)) != 1 || len(opened(col.List(), violations.ToiletSafety)) != 1 {
		t.Fatalf("got %+v, want a bin_fire and a toilet_safety at once", col.List())
	}
	// Releasing them in order later raises nothing more.
	if err := e.AdvanceTo(ctx, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(opened(col.List(), violations.BinFire)); n != 1 {
		t.Errorf("bin_fire raised %d times, want 1", n)
	}
}
