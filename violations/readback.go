package violations

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// Late readings beyond what memory holds. A reading older than its device's
// replay span (replay.go: past ReplayWindow, evicted by ReplayBytes, or from
// before a restart, which keeps state but no history) but within MaxAge is
// not left out when the engine has a History: it waits in the device's state
// (deviceState.Late, so snapshots carry it) and the device is queued for a
// read-back. One worker, off the shards' goroutines, takes the queue in
// order and for each device:
//
//  1. reads back the device's stored readings over [lo-margin, hi+margin]
//     (lo and hi the oldest and newest waiting reading, margin the warm-up
//     of readbackMargin: the longest rule window of the kind, plus its
//     upload delay and the lateness; never past the device's own time), and
//     the violations raised for it over the same span;
//  2. merges them with the waiting readings and with the readings the
//     device still holds in memory (those may not have reached InfluxDB
//     yet), one per device and time, late ones first;
//  3. runs a fresh state of the device's detectors over them, watched from
//     lo-margin (so a route window that opened before is not judged), and
//     ticks it to the end of the span, or runs it on the device's next 30
//     stored readings after the span when there are any;
//  4. reconciles by stable key: what the run raised at or after lo that is
//     neither stored nor among the device's in-memory emissions is raised;
//     what was stored for the span (overlapping [lo, hi], starting inside
//     the run, ended early enough that the run would have raised it again)
//     and the run did not raise is withdrawn, with a note on its case.
//
// The device's live state is not replaced: the re-run judges the old span
// beside it. The queue is bounded (ReadbackQueue devices); when it is full
// the device keeps waiting in its shard and is offered again on the next
// clock tick (counted in sanigate_violation_readback_queue_full_total). A
// device holds at most maxPending waiting readings; more are counted as late
// and left out. A failing History (InfluxDB down, the writer behind) is
// retried with backoff while the device keeps its place.

// History is where the engine reads back what it no longer holds in memory.
// Its methods are called from one goroutine at a time and may block (the
// read-back worker waits; detection does not).
type History interface {
	// Readings returns the stored readings and events of device (of kind)
	// with times in [from, to]. It returns only once every reading handed
	// to the gateway before the call can be in the answer (the gateway
	// waits for its writer), or an error.
	Readings(ctx context.Context, device, kind string, from, to time.Time) ([]telemetry.Reading, error)
	// After returns the first n stored readings of device (of kind's
	// measurement, not events) after t, in time order.
	After(ctx context.Context, device, kind string, t time.Time, n int) ([]telemetry.Reading, error)
	// Raised returns the violations raised for device with a start in
	// [from, to] and not withdrawn, without evidence; Resolved is set for
	// those resolved since.
	Raised(ctx context.Context, device string, from, to time.Time) ([]Violation, error)
}

// LateReading is a reading waiting for its device's read-back.
type LateReading struct {
	T    time.Time
	FP   uint64
	Line []byte
}

// readbackJob is one device's read-back, as its shard hands it over.
type readbackJob struct {
	device, kind string
	late         []entry // the waiting readings, in time order
	n            int     // how many of the device's Late they are
	lo, hi       time.Time
	liveDone     time.Time  // the device's own time when queued
	mem          []entry    // what the device held in memory over the span
	emits        []emission // what the device raised since its oldest mark
}

// readbackTail is how many of the device's readings after a read-back's
// span it runs on: enough for the far end of a gap (its fix and the loads
// that weigh it).
const readbackTail = 30

// maxReadbackSpan bounds the late readings one read-back judges, so that
// its answer stays small (a truck's 6 h every 5 s and the margins are about
// 7,700 readings, 2 MiB of JSON); an upload spanning more is judged in
// several read-backs, oldest first.
const maxReadbackSpan = 6 * time.Hour

// ErrHistoryRefused marks a History error that trying again will not cure
// (a query InfluxDB refuses, an answer too large): after a few attempts the
// read-back gives up, and its readings are counted as late.
var ErrHistoryRefused = errors.New("violations: the history refused the read-back")

// maxRefusals is how many refused attempts a read-back makes before it
// gives up; other failures (InfluxDB down, the writer behind) are retried
// until they pass.
const maxRefusals = 3

// readbackDone tells a shard that a device's read-back of n waiting
// readings is over.
type readbackDone struct {
	device string
	n      int
}

// readbackMargin is the warm-up before a read-back's span and the settling
// after it: the longest rule window of the kind (an hour at least), plus the
// delay its clock rules wait (upload delay and lateness).
func (c *Config) readbackMargin(kind string) time.Duration {
	w := time.Hour
	switch kind {
	case telemetry.KindTruck:
		w = max(w, c.IllegalDumping.Window.D(), c.Overload.MinDuration.D(), 3*c.TrackingGap.MinSilence.D())
	case telemetry.KindBin:
		w = max(w, c.BinOverflow.MajorAfter.D()+c.BinOverflow.ClearAfter.D(), c.BinDamaged.MinDuration.D())
	case telemetry.KindToilet:
		w = max(w, c.ToiletOdour.MinDuration.D()+c.ToiletOdour.ClearDuration.D(), c.ToiletSafety.MaxOccupied.D(),
			c.ToiletCold.MinDuration.D()+c.ToiletCold.ClearAfter.D(), c.ToiletLeak.MinDuration.D())
	}
	return w + c.uploadDelay(kind) + c.Lateness.D()
}

// waitLate keeps a reading older than the device's replay span for a
// read-back, or counts it as late when the device already holds maxPending.
func (s *shard) waitLate(e *env, r *telemetry.Reading, en entry) {
	d := e.state
	for i := range d.Late {
		if d.Late[i].FP == en.fp && d.Late[i].T.Equal(en.t) {
			s.e.m.duplicates.Inc()
			return
		}
	}
	size := lateSize(en.line)
	if len(d.Late) >= maxPending || s.lateBytes+size > maxWaitingBytes/len(s.e.shards) {
		s.tooLate(e, r)
		return
	}
	if urgent[r.Event] {
		d.lateEvent(e, r) // raised at once; the read-back finds it among the device's emissions
	}
	d.Late = append(d.Late, LateReading{T: en.t, FP: en.fp, Line: append([]byte(nil), en.line...)})
	s.lateBytes += size
	d.dirty = true
	s.rbWait[d.ID] = true
}

// maxWaitingBytes bounds the readings the whole fleet keeps waiting for a
// read-back (each device also at most maxPending): beyond it, a reading
// older than its device's memory is counted late, as without a history.
const maxWaitingBytes = 16 << 20

// lateSize is what one waiting reading holds: its line and its header.
func lateSize(line []byte) int { return len(line) + 48 }

// waitingBytes is what the readings ls hold.
func waitingBytes(ls []LateReading) int {
	n := 0
	for _, l := range ls {
		n += lateSize(l.Line)
	}
	return n
}

// offerReadbacks hands the devices with waiting readings to the read-back
// queue, while it has room.
func (s *shard) offerReadbacks() {
	for id := range s.rbWait {
		d := s.devices[id]
		if d == nil || len(d.Late) == 0 {
			delete(s.rbWait, id)
			continue
		}
		if d.rbBusy {
			continue
		}
		if len(s.e.rbq) == cap(s.e.rbq) {
			// Full: offered again on the next flush or tick, without
			// copying the device's readings for nothing.
			s.e.m.rbFull.Inc()
			return
		}
		j := s.readbackJob(d)
		select {
		case s.e.rbq <- j:
			d.rbBusy = true
			delete(s.rbWait, id)
			s.e.m.rbQueued.Inc()
		default:
			s.e.m.rbFull.Inc()
			return // offered again on the next flush or tick
		}
	}
}

// readbackJob copies what a read-back of d needs.
// A job takes the oldest waiting readings that lie within
// maxReadbackSpan of the oldest: the rest wait for the next job.
func (s *shard) readbackJob(d *deviceState) *readbackJob {
	sort.SliceStable(d.Late, func(a, b int) bool { return d.Late[a].T.Before(d.Late[b].T) })
	j := &readbackJob{device: d.ID, kind: d.Kind, liveDone: d.Done}
	for _, l := range d.Late {
		if l.T.Sub(d.Late[0].T) > maxReadbackSpan {
			break
		}
		j.late = append(j.late, entry{kind: entryReading, t: l.T, fp: l.FP, line: l.Line})
	}
	j.n = len(j.late)
	j.lo, j.hi = j.late[0].t, j.late[len(j.late)-1].t
	if j.liveDone.Before(j.hi) {
		j.liveDone = j.hi
	}
	margin := s.e.cur().dc.readbackMargin(d.Kind)
	from, to := j.lo.Add(-margin), j.hi.Add(margin)
	hist := d.rp.hist
	for off := 0; off < len(hist); {
		en, next := nextEntry(hist, off)
		if en.kind == entryReading && !en.t.Before(from) && !en.t.After(to) {
			en.line = append([]byte(nil), en.line...)
			j.mem = append(j.mem, en)
		}
		off = next
	}
	j.emits = append(append([]emission(nil), d.rp.emits...), d.rp.carried...)
	return j
}

// doneReadback drops the readings a read-back went through from d's waiting
// ones.
func (s *shard) doneReadback(m readbackDone) {
	d := s.devices[m.device]
	if d == nil {
		return
	}
	d.rbBusy = false
	n := min(m.n, len(d.Late))
	s.lateBytes = max(0, s.lateBytes-waitingBytes(d.Late[:n]))
	d.Late = append([]LateReading(nil), d.Late[n:]...)
	d.dirty = true
	if len(d.Late) > 0 {
		s.rbWait[d.ID] = true
	}
}

// readbacks runs the queue until ctx ends (Run's worker).
func (e *Engine) readbacks(ctx context.Context) {
	ws := &shard{e: e, devices: map[string]*deviceState{}, rerunQ: map[string]bool{}, rbWait: map[string]bool{}}
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-e.rbq:
			e.m.rbQueued.Dec()
			if !e.readbackRetrying(ctx, ws, j) {
				return
			}
			s := e.shardFor(j.device)
			select {
			case s.in <- shardMsg{readback: &readbackDone{device: j.device, n: j.n}}:
			case <-ctx.Done():
				return
			}
			e.kickReadbacks(ctx) // the queue has room: devices waiting in any shard are offered again
		}
	}
}

// kickReadbacks wakes every shard, so that those with devices waiting for a
// read-back offer them to the queue (an empty message is handled as
// nothing, then the shard flushes). Run calls it at start, for what a
// restored state was waiting for; the worker after each read-back.
func (e *Engine) kickReadbacks(ctx context.Context) {
	for _, s := range e.shards {
		select {
		case s.in <- shardMsg{}:
		case <-ctx.Done():
			return
		}
	}
}

// drainReadbacks runs the queued read-backs on the calling goroutine
// (ProcessReadings), until no shard has a device waiting.
func (e *Engine) drainReadbacks(ctx context.Context) error {
	if e.opts.History == nil {
		return nil
	}
	ws := &shard{e: e, devices: map[string]*deviceState{}, rerunQ: map[string]bool{}, rbWait: map[string]bool{}}
	for {
		for _, s := range e.shards {
			s.offerReadbacks()
		}
		select {
		case j := <-e.rbq:
			e.m.rbQueued.Dec()
			if !e.readbackRetrying(ctx, ws, j) {
				return ctx.Err()
			}
			e.shardFor(j.device).doneReadback(readbackDone{device: j.device, n: j.n})
			if ws.err != nil {
				return ws.err
			}
		default:
			return nil
		}
	}
}

// readbackRetrying runs j, retrying with backoff while the history fails;
// false when ctx ended first. A read-back the history refuses maxRefusals
// times is given up: its readings are counted as late and left out.
func (e *Engine) readbackRetrying(ctx context.Context, ws *shard, j *readbackJob) bool {
	backoff := time.Second
	refused := 0
	for attempt := 0; ; attempt++ {
		err := e.readback(ctx, ws, j)
		if err == nil {
			return true
		}
		e.m.rbErrors.Inc()
		if errors.Is(err, ErrHistoryRefused) {
			if refused++; refused >= maxRefusals {
				e.late.Add(int64(len(j.late)))
				e.m.late.WithLabelValues(j.kind).Add(float64(len(j.late)))
				e.log.Error("read-back refused: late readings left out", "device", j.device, "readings", len(j.late),
					"from", j.lo, "to", j.hi, "error", err)
				return true
			}
		}
		if attempt&(attempt-1) == 0 { // 0, 1, 2, 4, 8, ...
			e.log.Warn("read-back of late readings failed; will retry", "device", j.device, "readings", len(j.late),
				"attempt", attempt+1, "error", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// readback re-runs one device over a span older than its memory holds; see
// the top of this file.
func (e *Engine) readback(ctx context.Context, ws *shard, j *readbackJob) error {
	ws.err = nil
	started := time.Now()
	dc := e.cur().dc
	margin := dc.readbackMargin(j.kind)
	from, to := j.lo.Add(-margin), j.hi.Add(margin)
	if to.After(j.liveDone) {
		to = j.liveDone
	}
	span, err := e.readSpan(ctx, j, from, to, margin)
	if err != nil {
		return err
	}
	queried := time.Since(started)
	d, got, n := rerunSpan(ctx, ws, j, mergeReadback(j, span.stored, &ws.parser), from, to, span.end)
	limit := to
	if to.Before(j.liveDone) {
		limit = to.Add(-(dc.uploadDelay(j.kind) + dc.Lateness.D())) // the run stopped before a clock rule could raise it again
	}
	nNew, nGone := reconcileReadback(ctx, ws, j, span.raised, d.rp.emits, got, from, limit)
	e.m.readbacks.Inc()
	e.m.rbReadings.Add(float64(len(span.stored)))
	e.m.rbSeconds.Observe(time.Since(started).Seconds())
	e.log.Info("late readings re-judged from history", "device", j.device, "late", len(j.late), "from", from, "to", to,
		"stored", len(span.stored), "rerun", n, "raised", nNew, "withdrawn", nGone, "query", queried, "took", time.Since(started))
	return ws.err
}

// readbackSpan is what the history holds for a read-back.
type readbackSpan struct {
	stored []telemetry.Reading // the device's readings from..to, then the next ones after to
	end    time.Time           // the run's end: to, or the last of the readings after it
	raised []Violation         // what was raised for the device over the span
}

// readSpan queries the history for the device's readings over from..to,
// its next readings after the span (however far, up to what it handled
// live: so that a silence after the span is seen to end, device_offline
// resolved and a tracking gap judged on both its ends, not left open), and
// the violations raised over the span.
func (e *Engine) readSpan(ctx context.Context, j *readbackJob, from, to time.Time, margin time.Duration) (readbackSpan, error) {
	stored, err := e.opts.History.Readings(ctx, j.device, j.kind, from, to)
	if err != nil {
		return readbackSpan{}, fmt.Errorf("violations: read back %s: %w", j.device, err)
	}
	sp := readbackSpan{stored: stored, end: to}
	if to.Before(j.liveDone) {
		tail, err := e.opts.History.After(ctx, j.device, j.kind, to, readbackTail)
		if err != nil {
			return readbackSpan{}, fmt.Errorf("violations: read back %s: %w", j.device, err)
		}
		for _, r := range tail {
			if !r.Time.After(j.liveDone) {
				sp.stored = append(sp.stored, r)
				if r.Time.After(sp.end) {
					sp.end = r.Time
				}
			}
		}
	}
	sp.raised, err = e.opts.History.Raised(ctx, j.device, from.Add(-margin), to)
	if err != nil {
		return readbackSpan{}, fmt.Errorf("violations: read back violations of %s: %w", j.device, err)
	}
	return sp, nil
}

// rerunSpan runs a fresh state of the job's device over the readings rs
// between from and end, capturing what the detectors raise (got, in the
// order of the state's emissions); n is how many readings it ran.
func rerunSpan(ctx context.Context, ws *shard, j *readbackJob, rs []telemetry.Reading, from, to, end time.Time) (d *deviceState, got []Violation, n int) {
	d = newDeviceState(j.device, j.kind)
	d.Since = from
	d.rp.capture = &got
	env := ws.env(ctx, d)
	for i := range rs {
		r := &rs[i]
		if r.Time.Before(from) || r.Time.After(end) {
			continue
		}
		if r.Time.After(d.MaxTime) {
			d.MaxTime = r.Time
		}
		d.tick(env, r.Time)
		d.handle(env, r)
		n++
	}
	if end.Equal(to) {
		d.tick(env, to) // the clock rules up to the span's end; past the readings after it, nothing is known
	}
	d.rp.capture = nil
	return d, got, n
}

// reconcileReadback compares, by stable key, what a read-back's run raised
// (emits, with got their full violations) with what was raised before
// (raised, from the history, and the job's emissions in memory): it raises
// what is new since the late readings' start, and withdraws what the run
// no longer supports within the span it judged (from..limit).
func reconcileReadback(ctx context.Context, ws *shard, j *readbackJob, raised []Violation, emits []emission, got []Violation,
	from, limit time.Time) (nNew, nGone int) {
	have := map[string]bool{}
	for i := range raised {
		have[raised[i].Key] = true
		if raised[i].Resolved {
			have[raised[i].Key+"|resolved"] = true
		}
	}
	inMemory := map[string]bool{}
	for i := range j.emits {
		have[emitID(&j.emits[i].v)] = true
		inMemory[j.emits[i].v.Key] = true
	}
	now := map[string]bool{}
	for i, em := range emits {
		now[em.v.Key] = true
		id := emitID(&em.v)
		if em.at.Before(j.lo) || have[id] {
			continue // the warm-up, judged before without the late readings; or already raised
		}
		have[id] = true
		ws.raise(ctx, got[i])
		nNew++
	}
	gone := map[string]bool{}
	for _, v := range raised {
		if now[v.Key] || inMemory[v.Key] || gone[v.Key] ||
			v.End.Before(j.lo) || v.Start.After(j.hi) || v.Start.Before(from) || v.End.After(limit) {
			continue
		}
		gone[v.Key] = true
		v.Resolved = false
		ws.withdraw(ctx, v)
		nGone++
	}
	return nNew, nGone
}

// mergeReadback merges a job's waiting readings, what its device held in
// memory and what the history returned, in time order, one per time and
// event (the first of late, memory, stored).
func mergeReadback(j *readbackJob, stored []telemetry.Reading, p *telemetry.Parser) []telemetry.Reading {
	type key struct {
		t     int64
		event string
	}
	seen := map[key]bool{}
	out := make([]telemetry.Reading, 0, len(j.late)+len(j.mem)+len(stored))
	add := func(r telemetry.Reading) {
		k := key{r.Time.UnixNano(), r.Event}
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, r)
	}
	for _, src := range [][]entry{j.late, j.mem} {
		for _, en := range src {
			if r, err := p.Line(en.line); err == nil {
				add(r)
			}
		}
	}
	for _, r := range stored {
		add(r)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Time.Before(out[b].Time) })
	return out
}
