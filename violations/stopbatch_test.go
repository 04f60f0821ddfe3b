package violations_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
	"github.com/sanigate/sanigate/violations"
)

// The tests here stop Run while a spool batch is half handed to the shards.
// A batch goes to each shard as one message, in shard order, and a shard's
// channel holds 64 messages. Two toilets, one on each of two shards, report
// once a minute; Run reads two records at a time, so that each batch is one
// reading of each toilet. The sink blocks every raise of one toilet until
// the test opens it: that toilet's shard stops on its first batch, the next
// 64 wait in its channel, and batch 66 is the one Run cannot hand it.
//
// Each test runs in a synctest bubble, with a real spool and state folder:
// synctest.Wait says when every goroutine is parked (Run in the hand-off it
// is testing), and the engine's timeouts pass on the bubble's clock.
//
// Each test then restarts from the state folder, as the process would, and
// compares what the sink was given across all runs with what one engine
// raises from the same readings at once.

const (
	stopShard0 = "toilet-03" // the first shard of a batch
	stopShard1 = "toilet-02" // the later one
	// stopBatches is the phase-2 batch Run blocks on: the one the stuck
	// shard takes first, 64 in its channel, and this one.
	stopBatches = 66
)

var stopFleet = sync.OnceValues(func() (*fleet.Config, error) {
	hash, err := fleet.HashPassword("pw", 4)
	if err != nil {
		return nil, err
	}
	yaml := fmt.Sprintf(`devices:
  - {id: %s, kind: toilet, class: 3, contractor: greenclean, lat: 39.924, lon: 116.32, password_hash: %q}
  - {id: %s, kind: toilet, class: 2, contractor: citybright, lat: 39.892, lon: 116.32, password_hash: %q}
`, stopShard0, hash, stopShard1, hash)
	return fleet.Parse("stop.yaml", []byte(yaml), nil)
})

// stopReadings are the two toilets' readings: phase 1 (10:00 to 10:29),
// taken and checkpointed by a first engine, then phase 2, one batch a
// minute from 10:30: both press their help button in the first batch (the
// raise the stuck shard blocks on), the first toilet again in the last, and
// each has a spell the detectors raise in between.
func stopReadings() (phase1, phase2 []telemetry.Reading) {
	for i := range 30 + stopBatches {
		t := at(10, i)
		r0 := rd(stopShard0, telemetry.KindToilet, t, toiletFields(i >= 35 && i < 75, false))
		r1 := rd(stopShard1, telemetry.KindToilet, t, toiletFields(false, i >= 40 && i < 70))
		switch i {
		case 30:
			r0 = ev(stopShard0, telemetry.KindToilet, "help_button", t, map[string]float64{"stall": 1}, nil)
			r1 = ev(stopShard1, telemetry.KindToilet, "help_button", t, map[string]float64{"stall": 2}, nil)
		case 30 + stopBatches - 1:
			r0 = ev(stopShard0, telemetry.KindToilet, "help_button", t, map[string]float64{"stall": 1}, nil)
		}
		if i < 30 {
			phase1 = append(phase1, r0, r1)
		} else {
			phase2 = append(phase2, r0, r1)
		}
	}
	return phase1, phase2
}

func toiletFields(cold, odour bool) map[string]float64 {
	f := map[string]float64{"nh3_mgm3": 0.1, "h2s_mgm3": 0.002, "temp_c": 18, "stalls_occupied": 0, "people_in": 1000,
		"water_l": 5000, "paper_pct": 80, "soap_pct": 80}
	if cold {
		f["temp_c"] = 8
	}
	if odour {
		f["nh3_mgm3"] = 1.5
	}
	return f
}

// stopEnd is the wall clock of the restart: the detectors tick to it.
var stopEnd = at(12, 0)

// gateSink keeps what it is given, by the run (phase) that gave it. Every
// raise of the gated device waits until open is closed, or its context
// ends (then it fails, and the engine keeps the violation as not handed on).
type gateSink struct {
	mu     sync.Mutex
	phase  int
	got    [4][]violations.Violation
	gate   string
	open   chan struct{}
	opened sync.Once
}

// release lets the gated device's raises through, from now on.
func (s *gateSink) release() { s.opened.Do(func() { close(s.open) }) }

func (s *gateSink) Raise(ctx context.Context, v violations.Violation) error {
	if v.Device == s.gate {
		select {
		case <-s.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.got[s.phase] = append(s.got[s.phase], v)
	s.mu.Unlock()
	return nil
}

// of returns what runs phases raised, in order.
func (s *gateSink) of(phases ...int) []violations.Violation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []violations.Violation
	for _, p := range phases {
		out = append(out, s.got[p]...)
	}
	return out
}

func (s *gateSink) setPhase(p int) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

// logBuf collects an engine's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tornLog is what Run logs when it stops with a batch torn between shards.
const tornLog = "handed to only some shards"

// stopRig is the spool, the state folder and the sink the runs share.
type stopRig struct {
	t          *testing.T
	cfg        *fleet.Config
	dir, state string
	sp         *spool.Spool
	sink       *gateSink
	phase1     []telemetry.Reading
	phase2     []telemetry.Reading
	end1       int64          // the spool's end after phase 1: committed by the first run
	recs       []spool.Record // phase 2's records, in order
}

// newStopRig runs phase 1 through a first engine to its checkpoint, then
// appends phase 2 with the sink gating gate.
func newStopRig(t *testing.T, gate string) *stopRig {
	t.Helper()
	cfg, err := stopFleet()
	if err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string]int{stopShard0: 0, stopShard1: 1} {
		h := fnv.New32a()
		h.Write([]byte(dev))
		if got := int(h.Sum32() % 2); got != want {
			t.Fatalf("%s is on shard %d of 2, want %d", dev, got, want)
		}
	}
	r := &stopRig{t: t, cfg: cfg, dir: t.TempDir(), state: t.TempDir(), sink: &gateSink{gate: gate, open: make(chan struct{})}}
	r.phase1, r.phase2 = stopReadings()
	r.openSpool()
	r.end1 = appendAll(t, r.sp, r.phase1)

	r.sink.setPhase(1)
	e := violations.NewEngine(cfg, violations.DefaultConfig(), r.sink, r.opts(at(10, 30), nil))
	cons := r.consumer()
	r.runAWhile(e, cons)
	if got := cons.Committed(); got != r.end1 {
		t.Fatalf("phase 1 committed %d, want %d", got, r.end1)
	}

	end := appendAll(t, r.sp, r.phase2)
	probe, err := r.sp.Consumer("probe")
	if err != nil {
		t.Fatal(err)
	}
	for len(r.recs) < len(r.phase2) {
		recs, err := probe.Next(context.Background(), len(r.phase2), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.Offset >= r.end1 {
				r.recs = append(r.recs, rec)
			}
		}
	}
	if last := r.recs[len(r.recs)-1].End; last != end {
		t.Fatalf("phase 2 records end at %d, spool at %d", last, end)
	}
	return r
}

func (r *stopRig) openSpool() {
	sp, _, err := spool.Open(r.dir, spool.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.sp = sp
	r.t.Cleanup(func() { sp.Close() })
}

func (r *stopRig) consumer() *spool.Consumer {
	cons, err := r.sp.Consumer("detectors")
	if err != nil {
		r.t.Fatal(err)
	}
	return cons
}

// opts are the options of a run that ticks every 5 ms and checkpoints
// every 10 ms (on the bubble's clock) at wall clock now.
func (r *stopRig) opts(now time.Time, reg *prometheus.Registry) violations.EngineOptions {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return violations.EngineOptions{Shards: 2, StateDir: r.state, Now: func() time.Time { return now },
		Tick: 5 * time.Millisecond, Checkpoint: 10 * time.Millisecond, Registerer: reg}
}

// runAWhile runs e until it has read what the spool holds, ticked and
// checkpointed, then stops it.
func (r *stopRig) runAWhile(e *violations.Engine, cons *spool.Consumer) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, cons) }()
	time.Sleep(time.Second) // the bubble's clock: every goroutine has had its turn many times over
	synctest.Wait()
	cancel()
	if err := <-done; err != nil {
		r.t.Fatal(err)
	}
}

// stuck is phase 2's run: an engine reading two records a batch and never
// ticking, with the gate closed. It returns once Run is parked on batch 66.
type stuck struct {
	cancel context.CancelFunc
	done   chan error
	cons   *spool.Consumer
	log    *logBuf
}

func (r *stopRig) startStuck() *stuck {
	r.t.Helper()
	r.sink.setPhase(2)
	s := &stuck{done: make(chan error, 1), cons: r.consumer(), log: &logBuf{}}
	opts := r.opts(at(10, 30), nil)
	opts.MaxRecords, opts.Tick, opts.Checkpoint = 2, time.Hour, time.Hour
	opts.Logger = slog.New(slog.NewTextHandler(s.log, nil))
	e := violations.NewEngine(r.cfg, violations.DefaultConfig(), r.sink, opts)
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	go func() { s.done <- e.Run(ctx, s.cons) }()
	synctest.Wait()
	s.running(r.t)
	return s
}

// running fails the test if Run has returned.
func (s *stuck) running(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.done:
		t.Fatalf("Run returned (%v) while its context was live", err)
	default:
	}
}

// batchEnd is where phase 2's batch k (from 1) ends.
func (r *stopRig) batchEnd(k int) int64 { return r.recs[2*k-1].End }

// restart opens the spool again, as a new process would, checks the cursor
// it resumes from, runs a new engine from the state folder to the clock's
// end, and returns how many readings that engine read.
func (r *stopRig) restart(cursor int64) float64 {
	r.t.Helper()
	if err := r.sp.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.openSpool()
	r.sink.release() // the new process's sink takes violations
	cons := r.consumer()
	if got := cons.Committed(); got != cursor {
		r.t.Fatalf("a new engine resumes at %d, want %d (phase 1 ended at %d, phase 2 at %d)", got, cursor,
			r.end1, r.batchEnd(stopBatches))
	}
	r.sink.setPhase(3)
	reg := prometheus.NewRegistry()
	e := violations.NewEngine(r.cfg, violations.DefaultConfig(), r.sink, r.opts(stopEnd, reg))
	r.runAWhile(e, cons)
	if got, want := cons.Committed(), r.batchEnd(stopBatches); got != want {
		r.t.Fatalf("after the restart the cursor is at %d, want the spool's end %d", got, want)
	}
	return counter(r.t, reg, "sanigate_violation_readings_total")
}

// reference is what one engine raises from all the readings at once.
func (r *stopRig) reference() []violations.Violation {
	r.t.Helper()
	dc := violations.DefaultConfig()
	col := &collector{}
	e := violations.NewEngine(r.cfg, dc, col, violations.EngineOptions{Shards: 2})
	ctx := context.Background()
	if err := e.ProcessReadings(ctx, append(slices.Clone(r.phase1), r.phase2...)); err != nil {
		r.t.Fatal(err)
	}
	if err := e.AdvanceTo(ctx, stopEnd.Add(-dc.ClockGrace.D())); err != nil {
		r.t.Fatal(err)
	}
	ref := col.List()
	for _, typ := range []string{violations.ToiletSafety, violations.ToiletOdour, violations.ToiletCold} {
		if len(opened(ref, typ)) == 0 {
			r.t.Fatalf("the readings raise no %s: %s", typ, strings.Join(fingerprints(ref), "\n"))
		}
	}
	return ref
}

// sameRaises compares what was raised with the reference, repeats included.
func sameRaises(t *testing.T, what string, got, want []violations.Violation) {
	t.Helper()
	g, w := fingerprints(got), fingerprints(want)
	if !slices.Equal(g, w) {
		t.Errorf("%s:\n%s\nall at once:\n%s", what, strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}

// TestStopMidBatchLaterShardCatchesUp: Run stops while a later shard of a
// batch is stuck, the shard takes its part within the wait, and the cursor
// is committed up to the batch's end: the restart replays nothing and no
// violation is raised twice.
func TestStopMidBatchLaterShardCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t, stopShard1)
		s := r.startStuck()
		// The first shard has the last batch: its toilet's second help call.
		if n := len(opened(r.sink.of(2), violations.ToiletSafety)); n != 2 {
			t.Fatalf("%d help calls raised by the first shard before the stop, want 2: %+v", n, r.sink.of(2))
		}
		s.cancel()
		synctest.Wait()
		s.running(t) // waiting for the later shard, as the stop allows
		if got := s.cons.Committed(); got != r.end1 {
			t.Fatalf("committed %d while the batch was half handed on, want %d", got, r.end1)
		}
		r.sink.release()
		if err := <-s.done; err != nil {
			t.Fatal(err)
		}
		if got, want := s.cons.Committed(), r.batchEnd(stopBatches); got != want {
			t.Errorf("committed %d, want the batch's end %d", got, want)
		}
		if strings.Contains(s.log.String(), "level=ERROR") {
			t.Errorf("errors logged:\n%s", s.log)
		}
		if n := r.restart(r.batchEnd(stopBatches)); n != 0 {
			t.Errorf("the restart read %g readings again, want none", n)
		}
		sameRaises(t, "stopped and restarted", r.sink.of(1, 2, 3), r.reference())
	})
}

// TestStopMidBatchLaterShardStuck: Run stops while a later shard of a batch
// is stuck and stays so past the wait. The batch is torn: nothing more is
// committed, and the restart replays every reading since the last
// checkpoint. As the engine promises (snapshot.go), what was raised after
// that checkpoint is raised again with the same keys, and nothing else is.
func TestStopMidBatchLaterShardStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t, stopShard1)
		s := r.startStuck()
		s.cancel()
		if err := <-s.done; err != nil { // the bubble's clock passes the wait
			t.Fatal(err)
		}
		if got := s.cons.Committed(); got != r.end1 {
			t.Errorf("committed %d, want the last checkpoint's %d", got, r.end1)
		}
		if !strings.Contains(s.log.String(), tornLog) {
			t.Errorf("no torn batch logged:\n%s", s.log)
		}
		if n := r.restart(r.end1); n != float64(len(r.phase2)) {
			t.Errorf("the restart read %g readings, want phase 2's %d", n, len(r.phase2))
		}
		ref := r.reference()
		// Phase 1 and the restart are the run as if never stopped.
		sameRaises(t, "before the stop and after the restart", r.sink.of(1, 3), ref)
		// What the stopped run handed on is raised again, the same.
		again := fingerprints(r.sink.of(3))
		stopped := fingerprints(r.sink.of(2))
		if len(stopped) == 0 {
			t.Fatal("the stopped run raised nothing: the first shard's part of the batches was not judged")
		}
		for _, f := range stopped {
			if i, ok := slices.BinarySearch(again, f); !ok {
				t.Errorf("raised before the stop and not again after it: %s", f)
			} else {
				again = slices.Delete(again, i, i+1)
			}
		}
		for _, v := range r.sink.of(2) {
			if v.Device == stopShard1 {
				t.Errorf("the stuck toilet raised %s before the stop", v.Key)
			}
		}
	})
}

// TestStopFirstShardBlocked: Run stops while the first shard of a batch
// cannot take it. Nothing of that batch is handed on, so the batch is not
// torn: the cursor is committed up to the batch before, and the restart
// reads only the batch.
func TestStopFirstShardBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t, stopShard0)
		s := r.startStuck()
		s.cancel()
		synctest.Wait() // Run gave the batch up and waits for the shards' state
		s.running(t)
		if got := s.cons.Committed(); got != r.end1 {
			t.Fatalf("committed %d before the stuck shard answered, want %d", got, r.end1)
		}
		r.sink.release()
		if err := <-s.done; err != nil {
			t.Fatal(err)
		}
		if got, want := s.cons.Committed(), r.batchEnd(stopBatches-1); got != want {
			t.Errorf("committed %d, want the previous batch's end %d", got, want)
		}
		if strings.Contains(s.log.String(), "level=ERROR") {
			t.Errorf("errors logged:\n%s", s.log)
		}
		if n := r.restart(r.batchEnd(stopBatches - 1)); n != 2 {
			t.Errorf("the restart read %g readings, want the last batch's 2", n)
		}
		sameRaises(t, "stopped and restarted", r.sink.of(1, 2, 3), r.reference())
	})
}

// TestStuckShardDoesNotStopRun: a later shard of a batch stuck for longer
// than Run waits as it stops does not stop Run while its context is live:
// the batch is handed on once the shard takes it, and nothing is torn.
func TestStuckShardDoesNotStopRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t, stopShard1)
		s := r.startStuck()
		time.Sleep(5 * time.Minute) // the bubble's clock, well past any wait of the stop
		s.running(t)
		r.sink.release()
		synctest.Wait()
		s.running(t)
		s.cancel()
		if err := <-s.done; err != nil {
			t.Fatal(err)
		}
		if got, want := s.cons.Committed(), r.batchEnd(stopBatches); got != want {
			t.Errorf("committed %d, want the spool's end %d", got, want)
		}
		if strings.Contains(s.log.String(), "level=ERROR") {
			t.Errorf("errors logged:\n%s", s.log)
		}
		if n := r.restart(r.batchEnd(stopBatches)); n != 0 {
			t.Errorf("the restart read %g readings again, want none", n)
		}
		sameRaises(t, "stuck and restarted", r.sink.of(1, 2, 3), r.reference())
	})
}

// TestRestartDrainedTicks: an engine restarted on a spool it has wholly
// committed ticks its clock without waiting for a new record, so that
// time-window rules (a silence) fire as if it had never stopped.
func TestRestartDrainedTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newStopRig(t, "")
		r.sink.setPhase(2)
		cons := r.consumer()
		r.runAWhile(violations.NewEngine(r.cfg, violations.DefaultConfig(), r.sink, r.opts(at(11, 36), nil)), cons)
		if got, want := cons.Committed(), r.batchEnd(stopBatches); got != want {
			t.Fatalf("committed %d, want the spool's end %d", got, want)
		}
		if n := r.restart(r.batchEnd(stopBatches)); n != 0 {
			t.Errorf("the restart read %g readings again, want none", n)
		}
		ref := r.reference()
		if len(opened(ref, violations.DeviceOffline)) != 2 {
			t.Fatalf("the reference raises %d device_offline, want both toilets'", len(opened(ref, violations.DeviceOffline)))
		}
		sameRaises(t, "restarted on a drained spool", r.sink.of(1, 2, 3), ref)
	})
}
