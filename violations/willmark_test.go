package violations

import (
	"context"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// TestWillKeepsHistoryBounded: a device whose readings lag the gateway's
// clock by three hours loses its connection (a will, dated by the gateway's
// clock) and goes on sending. Its replay history stays within its budget:
// the will's time, ahead of the readings, must not stop the marks that let
// the history be trimmed.
func TestWillKeepsHistoryBounded(t *testing.T) {
	e := NewEngine(nil, DefaultConfig(), &discard{}, EngineOptions{Shards: 1})
	s := e.shards[0]
	ctx := context.Background()
	wall := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	s.device("bin-1", telemetry.KindBin)
	budget := e.cur().dc.replayBytes(telemetry.KindBin)
	base := wall.Add(-3 * time.Hour)
	seq := 0
	send := func(n int) {
		feedBin(t, s, "bin-1", base, &seq, n, func(time.Time) time.Time {
			wall = wall.Add(20 * time.Second)
			return wall
		})
	}
	send(200)
	if err := s.will(ctx, will{device: "bin-1", at: wall}); err != nil {
		t.Fatal(err)
	}
	peak := 0
	for range 40 { // 8,000 readings, each a second after the last: about four budgets' worth before the will's time
		send(200)
		peak = max(peak, len(s.devices["bin-1"].rp.hist))
	}
	if d := s.devices["bin-1"]; peak > 2*budget {
		t.Fatalf("replay history peaked at %d bytes (budget %d) with %d marks, the last at %s, readings at %s",
			peak, budget, len(d.rp.marks), d.rp.marks[len(d.rp.marks)-1].at, d.Done)
	}
	if e.Late() != 0 {
		t.Errorf("%d readings late", e.Late())
	}
}

// feedBin hands s n readings of a bin, a second apart from base on (seq
// counts them across calls), in batches of 20, each arriving at what
// arrival returns for its last reading's time.
func feedBin(t *testing.T, s *shard, device string, base time.Time, seq *int, n int, arrival func(last time.Time) time.Time) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 20 {
		var rs []telemetry.Reading
		for k := 0; k < 20; k++ {
			rs = append(rs, telemetry.Reading{Device: device, Kind: telemetry.KindBin,
				Time:   base.Add(time.Duration(*seq) * time.Second),
				Fields: []telemetry.Field{{Name: "fill_pct", Type: telemetry.Float, Num: float64(*seq % 90)}}})
			*seq++
		}
		if err := s.readings(ctx, rs, nil, arrival(rs[len(rs)-1].Time)); err != nil {
			t.Fatal(err)
		}
		if err := s.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
