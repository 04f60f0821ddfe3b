package violations_test

import (
	"context"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// A reload changes the thresholds the detectors judge by from the next
// reading on, while the engine keeps its state.
func TestEngineReloadThresholds(t *testing.T) {
	cfg := loadDemo(t)
	dc := violations.DefaultConfig() // low battery under 15 %
	col := &collector{}
	e := violations.NewEngine(cfg, dc, col, violations.EngineOptions{Shards: 2})
	ctx := context.Background()
	low := func(dev string, from time.Time) []telemetry.Reading {
		return every(dev, telemetry.KindBin, from, 5*time.Minute, 6, func(int) map[string]float64 {
			return map[string]float64{"fill_pct": 40, "battery_pct": 12}
		})
	}
	if err := e.ProcessReadings(ctx, low("bin-0001", at(1, 0))); err != nil {
		t.Fatal(err)
	}
	dc.LowBattery.MinPct, dc.LowBattery.ClearPct = 10, 12
	e.Reload(cfg, dc)
	if err := e.ProcessReadings(ctx, low("bin-0002", at(1, 0))); err != nil {
		t.Fatal(err)
	}
	if err := e.AdvanceTo(ctx, at(2, 0)); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, v := range opened(col.List(), violations.LowBattery) {
		got[v.Device]++
	}
	if got["bin-0001"] != 1 || got["bin-0002"] != 0 {
		t.Fatalf("low battery raised %v; want bin-0001 once (limit 15 %%) and bin-0002 never (limit 10 %% after the reload)", got)
	}
}
