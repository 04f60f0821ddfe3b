package violations

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// TestReadbackMargin states the warm-up a read-back takes before and after
// a late span, by kind, with the default thresholds (the README's table).
func TestReadbackMargin(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		kind string
		want time.Duration
	}{
		{telemetry.KindTruck, 2*time.Hour + 20*time.Minute},   // an hour at least, upload delay 70 min, lateness 10 min
		{telemetry.KindSweeper, 2*time.Hour + 20*time.Minute}, // the same
		{telemetry.KindBin, 8*time.Hour + 15*time.Minute},     // bin_overflow major after 8 h, cleared after 5 min
		{telemetry.KindToilet, time.Hour + 10*time.Minute},    // an hour covers the odour, safety, cold and leak windows
	} {
		if got := c.readbackMargin(tc.kind); got != tc.want {
			t.Errorf("%s: margin %s, want %s", tc.kind, got, tc.want)
		}
	}
}

// TestReadbackJobSpan: a job takes the oldest late readings within
// maxReadbackSpan of the oldest; the rest wait, and are taken by the next
// job once the first is done.
func TestReadbackJobSpan(t *testing.T) {
	e := NewEngine(nil, DefaultConfig(), nil, EngineOptions{Shards: 1})
	s := e.shards[0]
	d := s.device("trk", telemetry.KindTruck)
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	d.Done = t0.Add(24 * time.Hour)
	for _, h := range []int{9, 0, 1, 7, 3} { // out of order
		d.Late = append(d.Late, LateReading{T: t0.Add(time.Duration(h) * time.Hour), Line: []byte("x")})
	}
	j := s.readbackJob(d)
	if j.n != 3 || !j.lo.Equal(t0) || !j.hi.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("first job: %d readings over %s-%s, want 00:00, 01:00 and 03:00", j.n, j.lo, j.hi)
	}
	d.rbBusy = true
	d.Late = append(d.Late, LateReading{T: t0.Add(2 * time.Hour), Line: []byte("y")}) // while it runs
	s.doneReadback(readbackDone{device: "trk", n: j.n})
	j = s.readbackJob(d)
	if j.n != 2 || !j.lo.Equal(t0.Add(2*time.Hour)) || !j.hi.Equal(t0.Add(7*time.Hour)) {
		t.Fatalf("second job: %d readings over %s-%s, want 02:00 and 07:00", j.n, j.lo, j.hi)
	}
	s.doneReadback(readbackDone{device: "trk", n: j.n})
	if len(d.Late) != 1 || !d.Late[0].T.Equal(t0.Add(9*time.Hour)) || !s.rbWait["trk"] {
		t.Fatalf("left waiting: %+v (queued again: %v), want 09:00", d.Late, s.rbWait["trk"])
	}
}

// TestWaitingReadingsBounded: the readings the fleet keeps waiting for a
// read-back are bounded as a whole (maxWaitingBytes), not only per device:
// beyond it a reading is counted late, and a finished read-back frees its
// share again.
func TestWaitingReadingsBounded(t *testing.T) {
	e := NewEngine(nil, DefaultConfig(), nil, EngineOptions{Shards: 1})
	s := e.shards[0]
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	line := make([]byte, 4000)
	perDevice := maxPending / 2
	waiting := 0
	for dev := 0; e.late.Load() == 0; dev++ {
		if dev > maxWaitingBytes/(perDevice*len(line))+2 {
			t.Fatalf("%d readings wait (%d bytes) and none was counted late", waiting, s.lateBytes)
		}
		d := s.device(fmt.Sprintf("trk-%d", dev), telemetry.KindTruck)
		env := s.env(context.Background(), d)
		for i := 0; i < perDevice && e.late.Load() == 0; i++ {
			at := t0.Add(time.Duration(i) * time.Second)
			r := telemetry.Reading{Device: d.ID, Kind: telemetry.KindTruck, Time: at}
			s.waitLate(env, &r, entry{kind: entryReading, t: at, fp: uint64(i), line: line})
			waiting++
		}
	}
	if s.lateBytes > maxWaitingBytes {
		t.Fatalf("%d bytes wait, over the bound of %d", s.lateBytes, maxWaitingBytes)
	}
	held := s.lateBytes
	d := s.devices["trk-0"]
	n := len(d.Late)
	s.doneReadback(readbackDone{device: "trk-0", n: n})
	if want := held - n*lateSize(line); s.lateBytes != want {
		t.Fatalf("after a read-back of %d readings %d bytes wait, want %d", n, s.lateBytes, want)
	}
}
