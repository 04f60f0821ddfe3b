package scenario_test

import (
	"context"
	"testing"
	"time"

	"github.com/sanigate/sanigate/simulators/scenario"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// The demo shows a case within a minute whatever the hour it starts at: the
// day it plays, replayed from where Demo says and then played one minute
// live, makes the detectors raise its first violation.
func TestDemoShowsAViolationWithinAMinuteAtAnyHour(t *testing.T) {
	cfg := loadDemo(t)
	loc := cfg.Location()
	for _, hour := range []int{0, 9, 22} {
		clock := time.Date(2026, 11, 30, hour, 17, 0, 0, loc)
		t.Run(clock.Format("15:04"), func(t *testing.T) {
			sc, from, _, err := scenario.Demo(cfg, 1, clock)
			if err != nil {
				t.Fatal(err)
			}
			if !from.Before(clock) || clock.Sub(from) > time.Hour {
				t.Fatalf("plays from %s, %s before the clock", from, clock.Sub(from))
			}
			var first *scenario.Expected
			for i, x := range sc.Truth {
				if !x.Start.Before(from) && x.End.Before(clock) {
					first = &sc.Truth[i]
					break
				}
			}
			if first == nil {
				t.Fatal("no injected violation between the start of play and the clock")
			}
			var played []scenario.Message
			for _, m := range sc.Live() {
				if !m.PublishAt.Before(from) && !m.PublishAt.After(clock.Add(time.Minute)) {
					played = append(played, m)
				}
			}
			col := &collector{}
			eng := violations.NewEngine(cfg, violations.DefaultConfig(), col, violations.EngineOptions{Shards: 2})
			ingest(t, cfg, played, func(rs []telemetry.Reading) {
				if err := eng.ProcessReadings(context.Background(), rs); err != nil {
					t.Fatal(err)
				}
			})
			for _, v := range col.List() {
				if v.Type == first.Type && v.Device == first.Device && !v.Resolved {
					return
				}
			}
			t.Errorf("after a minute of play, no %s of %s (injected %s..%s); raised: %d", first.Type, first.Device,
				first.Start.In(loc).Format("15:04"), first.End.In(loc).Format("15:04"), len(col.List()))
		})
	}
}
