package violations

import (
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// TestSmallerBudgetGivesBackHistory fills a bin's replay history to its
// default budget, then reloads a budget sixteen times smaller: after the
// next readings, the history is within the new budget and the array that
// held it is no larger than twice that, not the old one's size.
func TestSmallerBudgetGivesBackHistory(t *testing.T) {
	e := NewEngine(nil, DefaultConfig(), &discard{}, EngineOptions{Shards: 1})
	s := e.shards[0]
	s.device("bin-1", telemetry.KindBin)
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	seq := 0
	send := func(n int) {
		feedBin(t, s, "bin-1", base, &seq, n, func(last time.Time) time.Time { return last })
	}
	old := e.cur().dc.replayBytes(telemetry.KindBin)
	send(4000)
	rp := s.devices["bin-1"].rp
	if cap(rp.hist) < old*3/4 {
		t.Fatalf("history array %d bytes after 4,000 readings, want near the budget %d", cap(rp.hist), old)
	}
	dc := DefaultConfig()
	dc.ReplayBytes = old / 16
	e.Reload(nil, dc)
	send(200)
	rp = s.devices["bin-1"].rp
	if len(rp.hist) > dc.ReplayBytes || cap(rp.hist) > 2*dc.ReplayBytes {
		t.Fatalf("history %d bytes in an array of %d, budget now %d", len(rp.hist), cap(rp.hist), dc.ReplayBytes)
	}
	if len(rp.marks) == 0 || e.Late() != 0 {
		t.Fatalf("%d marks, %d late readings", len(rp.marks), e.Late())
	}
}
