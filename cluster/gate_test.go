package cluster

import (
	"log/slog"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/violationstest"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// binReading is a reading of bin-0001 at t with temperature temp.
func binReading(t time.Time, temp float64) telemetry.Reading {
	r := telemetry.Reading{Device: "bin-0001", Kind: telemetry.KindBin, Time: t}
	r.SetFloat("fill_pct", 40)
	r.SetFloat("temp_c", temp)
	return r
}

// A late reading that takes the support from a raised fire reaches the
// partition's sink as a withdrawal once the gate is open, and not at all
// during a rebuild.
func TestGateWithdraws(t *testing.T) {
	cfg := violationstest.Demo(t)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	hot := []telemetry.Reading{binReading(t0, 15), binReading(t0.Add(10*time.Minute), 75), binReading(t0.Add(20*time.Minute), 75)}
	cool := []telemetry.Reading{binReading(t0.Add(15*time.Minute), 15)} // between the two hot ones

	for _, live := range []bool{false, true} {
		col := &violationstest.Collector{}
		gate := &gateSink{sink: col, log: slog.New(slog.DiscardHandler)}
		gate.live.Store(live)
		eng := violations.NewEngine(cfg, violations.DefaultConfig(), gate, violations.EngineOptions{Shards: 1})
		if err := eng.ProcessReadings(t.Context(), hot); err != nil {
			t.Fatal(err)
		}
		fires := 0
		for _, v := range col.List() {
			if v.Type == violations.BinFire {
				fires++
			}
		}
		if want := map[bool]int{false: 0, true: 1}[live]; fires != want {
			t.Fatalf("live %v: %d fires raised, want %d", live, fires, want)
		}
		if err := eng.ProcessReadings(t.Context(), cool); err != nil {
			t.Fatal(err)
		}
		w := col.Withdrawn()
		if !live {
			if len(w) != 0 || len(col.List()) != 0 {
				t.Fatalf("closed gate passed on %v, withdrew %v", col.List(), w)
			}
			continue
		}
		if len(w) != 1 || w[0].Type != violations.BinFire {
			t.Fatalf("withdrawn %v, want the fire", w)
		}
		for _, v := range col.List() {
			if v.Type == violations.BinFire {
				t.Fatalf("the fire still stands after the late reading: %v", v)
			}
		}
	}
}
