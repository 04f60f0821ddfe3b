package violations

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
	"unsafe"

	"github.com/sanigate/sanigate/telemetry"
)

// How late readings are judged. A device's readings arrive in order over one
// connection and are handled as they come. A reading older than what the
// device's detectors already passed (a buffered trip uploaded after live
// data, an upload hours late) re-runs that device: its state is restored
// from the newest mark at or before the reading, the readings kept since the
// mark are merged with the late ones in time order, the detectors run over
// them again, and what they raise is reconciled with what they raised the
// first time by the violations' stable keys: new ones are raised, ones no
// longer supported are withdrawn (Withdrawer), unchanged ones are left alone.
//
// Each device keeps, in memory and nowhere else:
//   - marks: its encoded state (gob) every MarkEvery of event time, or every
//     quarter of its history budget;
//   - history: every reading handled since the oldest mark, as its line
//     (the spool's encoding) with a 25-byte header;
//   - emissions: the violations raised since the oldest mark, without their
//     evidence, to reconcile against.
//
// The bound is ReplayBytes per device for the history (the oldest mark and
// its readings are dropped past it) and ReplayWindow (or MaxAge, when
// shorter) of event time: a reading older than the oldest mark cannot be
// re-run from memory. With a History it is re-judged from the device's
// history read back from InfluxDB (readback.go); without one it is counted
// in sanigate_violation_late_readings_total and, when an event (a pickup, an
// alarm), still handled by the rules that need no order. Marks and history
// are not saved in snapshots: after a restart a device's replay span starts
// at its first new reading, and what is older goes the same way.

// replay is one device's re-run machinery; see above.
type replay struct {
	hist  []byte // entries: kind(1) time(8) fingerprint(8) length(uvarint) line
	marks []mark
	emits []emission
	// pending holds late readings waiting for the device's re-run; while
	// it is not empty, new readings wait with them.
	pending []entry
	capture *[]Violation // set during a re-run: what the detectors raise
	// tailT is the time of the newest entry in hist, tailFP the
	// fingerprints of the entries at that time.
	tailT  time.Time
	tailFP []uint64
	// carried are violations the clock raised beyond the readings a re-run
	// went through: they stand until the device's own time passes them,
	// then are withdrawn unless raised again.
	carried []emission
	delay   delays
}

// delays are the last few delays between a device's readings' times and
// their arrival at the gateway. Their least is the device's usual delay
// (its clock's offset and its link's latency, not a buffered upload's age):
// the clock ticks the device that much behind the wall clock, so that a
// device whose clock runs behind is not re-run on every reading.
type delays struct {
	d [16]time.Duration
	n int
}

func (ds *delays) observe(d time.Duration) {
	ds.d[ds.n%len(ds.d)] = max(d, 0)
	ds.n++
}

func (ds *delays) usual() time.Duration {
	n := min(ds.n, len(ds.d))
	if n == 0 {
		return 0
	}
	least := ds.d[0]
	for _, d := range ds.d[1:n] {
		least = min(least, d)
	}
	return least
}

// mark is the device's state before any reading at or after at.
type mark struct {
	at     time.Time
	state  []byte // the gob value of the state, read after head (markCodec)
	head   []byte // shared by the marks of a shard
	size   int    // counted against the replay budget (markSize)
	hist   int    // where in hist the readings after the mark start
	emits  int    // where in emits the emissions after the mark start
	origin bool   // no reading was handled before: valid for any earlier time
}

// emission is a violation raised while handling readings at time at.
type emission struct {
	at time.Time
	v  Violation // without evidence or geometry
}

const (
	entryReading byte = 1
	entryWill    byte = 2
	entryHeader       = 17
)

// entry is one decoded history entry.
type entry struct {
	kind byte
	t    time.Time
	fp   uint64
	line []byte
}

func appendEntry(buf []byte, en entry) []byte {
	buf = append(buf, en.kind)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(en.t.UnixNano()))
	buf = binary.LittleEndian.AppendUint64(buf, en.fp)
	buf = binary.AppendUvarint(buf, uint64(len(en.line)))
	return append(buf, en.line...)
}

// nextEntry decodes the entry at b[off:] and returns the offset after it.
func nextEntry(b []byte, off int) (entry, int) {
	en := entry{kind: b[off], t: time.Unix(0, int64(binary.LittleEndian.Uint64(b[off+1:]))),
		fp: binary.LittleEndian.Uint64(b[off+9:])}
	n, k := binary.Uvarint(b[off+entryHeader:])
	start := off + entryHeader + k
	en.line = b[start : start+int(n)]
	return en, start + int(n)
}

// fingerprint identifies a reading for duplicate detection: its time, event
// and values, leaving out what ingest adds on a resend (a duplicate-fix mark
// from the GPS filters, place tags).
func fingerprint(r *telemetry.Reading) uint64 {
	h := fnvOffset
	h = fnvUint(h, uint64(r.Time.UnixNano()))
	h = fnvString(h, r.Event)
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Name == "gps_filter" {
			continue
		}
		h = fnvString(h, f.Name)
		h = fnvUint(h, math.Float64bits(f.Num))
		h = fnvString(h, f.Str)
	}
	return h
}

// FNV-1a, 64 bits, without allocating.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return (h ^ 0xff) * fnvPrime // a separator: "ab","c" differs from "a","bc"
}

func fnvUint(h, v uint64) uint64 {
	for i := 0; i < 8; i++ {
		h = (h ^ (v & 0xff)) * fnvPrime
		v >>= 8
	}
	return h
}

// seen reports whether a reading with fingerprint fp at t is in the history.
func (rp *replay) seen(t time.Time, fp uint64) bool {
	for off := 0; off < len(rp.hist); {
		en, next := nextEntry(rp.hist, off)
		if en.kind == entryReading && en.fp == fp && en.t.Equal(t) {
			return true
		}
		off = next
	}
	for _, en := range rp.pending {
		if en.kind == entryReading && en.fp == fp && en.t.Equal(t) {
			return true
		}
	}
	return false
}

// atTail reports whether a reading with fingerprint fp at t is among the
// newest readings in the history, all at t.
func (rp *replay) atTail(t time.Time, fp uint64) bool {
	if !t.Equal(rp.tailT) {
		return false
	}
	for _, x := range rp.tailFP {
		if x == fp {
			return true
		}
	}
	return false
}

// covers reports whether a re-run can start at or before t.
func (rp *replay) covers(t time.Time) bool {
	if len(rp.marks) == 0 {
		return false
	}
	return rp.marks[0].origin || !rp.marks[0].at.After(t)
}

// markFor is the index of the newest mark a re-run from t starts at.
func (rp *replay) markFor(t time.Time) int {
	i := sort.Search(len(rp.marks), func(i int) bool { return rp.marks[i].at.After(t) })
	return max(i-1, 0)
}

// markCodec encodes the states of a shard's marks as one gob stream: the
// stream's type descriptions, which are most of a lone state's encoding and
// most of the time spent making it, are written once, in head, and each
// mark holds only its value. A mark is read back by a decoder that reads
// its head first. Marks are never saved, so this is no on-disk format.
type markCodec struct {
	buf  bytes.Buffer
	enc  *gob.Encoder
	head []byte // the types, and the value of an empty state
}

// encode returns d's state and the head it is read with.
func (c *markCodec) encode(d *deviceState) (state, head []byte, err error) {
	if c.enc == nil {
		c.buf.Reset()
		c.enc = gob.NewEncoder(&c.buf)
		// deviceState's fields are all of concrete types (no interfaces):
		// encoding one value describes every type the others use.
		if err := c.enc.Encode(&deviceState{}); err != nil {
			c.enc = nil
			return nil, nil, fmt.Errorf("violations: encode state of %s: %w", d.ID, err)
		}
		c.head = bytes.Clone(c.buf.Bytes())
		c.buf.Reset()
		if err := c.enc.Encode(&deviceState{}); err != nil {
			c.enc = nil
			return nil, nil, fmt.Errorf("violations: encode state of %s: %w", d.ID, err)
		}
	}
	c.buf.Reset()
	if err := c.enc.Encode(d); err != nil {
		c.enc = nil // the stream may be out of step: start a new one
		return nil, nil, fmt.Errorf("violations: encode state of %s: %w", d.ID, err)
	}
	return bytes.Clone(c.buf.Bytes()), c.head, nil
}

// markSize is what the replay budget counts for a mark whose state takes n
// bytes: the state and the mark itself, what it holds in memory (the head
// is shared by the shard's marks and not counted).
func markSize(n int) int { return n + int(unsafe.Sizeof(mark{})) }

// decodeMark reads back the state of a mark.
func decodeMark(m *mark) (*deviceState, error) {
	dec := gob.NewDecoder(io.MultiReader(bytes.NewReader(m.head), bytes.NewReader(m.state)))
	if err := dec.Decode(&deviceState{}); err != nil {
		return nil, fmt.Errorf("violations: decode state: %w", err)
	}
	d := &deviceState{}
	if err := dec.Decode(d); err != nil {
		return nil, fmt.Errorf("violations: decode state: %w", err)
	}
	return d, nil
}

// takeMark records d's state before handling a reading at t, when one is due.
func (s *shard) takeMark(d *deviceState, t time.Time) {
	rp := d.rp
	budget := s.e.cur().dc.replayBytes(d.Kind)
	if n := len(rp.marks); n > 0 {
		last := rp.marks[n-1]
		if t.Before(last.at) || t.Sub(last.at) < s.e.cur().dc.markEvery() && len(rp.hist)-last.hist < budget/4 {
			return
		}
	}
	b, head, err := s.marks.encode(d)
	if err != nil {
		s.e.log.Warn("no replay mark", "device", d.ID, "error", err)
		return
	}
	rp.marks = append(rp.marks, mark{at: t, state: b, head: head, size: markSize(len(b)), hist: len(rp.hist), emits: len(rp.emits),
		origin: d.LastSeen.IsZero() && d.Since.IsZero()})
	s.e.m.marks.Inc()
	s.trim(d)
}

// trim drops the oldest marks with their readings and emissions while the
// device is over its budget, or while the next mark is old enough to start
// any re-run MaxAge allows.
func (s *shard) trim(d *deviceState) {
	rp := d.rp
	budget := s.e.cur().dc.replayBytes(d.Kind)
	window := s.e.cur().dc.replayWindow()
	if s.e.opts.MaxAge > 0 && s.e.opts.MaxAge < window {
		window = s.e.opts.MaxAge
	}
	horizon := d.Done.Add(-window)
	drop := 0
	for drop+1 < len(rp.marks) {
		if rp.marks[drop+1].at.After(horizon) && rp.sizeFrom(drop) <= budget {
			break
		}
		drop++
	}
	if drop == 0 {
		return
	}
	m := rp.marks[drop]
	// In place: nothing keeps slices of hist past the call that takes them
	// (a re-run moves on to a new one, read-backs copy), and a new array
	// at every trim would be grown again, a copy each time, by the next
	// readings. An array grown far past the budget (a long re-run, a
	// budget made smaller by a reload) is given back.
	rp.hist = rp.hist[:copy(rp.hist, rp.hist[m.hist:])]
	if cap(rp.hist) > 2*budget && len(rp.hist) <= budget {
		rp.hist = append(make([]byte, 0, len(rp.hist)+budget/4), rp.hist...)
	}
	rp.emits = append([]emission(nil), rp.emits[m.emits:]...)
	marks := append([]mark(nil), rp.marks[drop:]...)
	for i := range marks {
		marks[i].hist -= m.hist
		marks[i].emits -= m.emits
	}
	rp.marks = marks
}

// sizeFrom is what the replay would hold when kept from mark i on.
func (rp *replay) sizeFrom(i int) int {
	n := len(rp.hist) - rp.marks[i].hist
	for _, m := range rp.marks[i:] {
		n += m.size
	}
	return n
}

// process handles one in-order entry: mark, history, clock, detectors.
func (s *shard) process(e *env, en entry, r *telemetry.Reading) {
	d := e.state
	if en.kind != entryWill {
		// A will is dated by the gateway's clock, not the device's: a
		// mark at it could lie ahead of the device's next readings, and
		// no mark is taken before the newest, so none would be taken
		// (nor the history trimmed) until the device's time passed it.
		s.takeMark(d, en.t)
	}
	d.rp.hist = appendEntry(d.rp.hist, en)
	if !en.t.Equal(d.rp.tailT) {
		d.rp.tailT, d.rp.tailFP = en.t, d.rp.tailFP[:0]
	}
	d.rp.tailFP = append(d.rp.tailFP, en.fp)
	d.dirty = true
	if en.kind == entryWill {
		d.Offline.will(e, en.t)
		return
	}
	if r.Time.After(d.MaxTime) {
		d.MaxTime = r.Time
	}
	d.tick(e, r.Time)
	d.handle(e, r)
	if len(d.rp.carried) > 0 && d.rp.capture == nil {
		s.settle(e)
	}
	if len(d.rp.hist) > s.e.cur().dc.replayBytes(d.Kind) {
		s.trim(d)
	}
}

// receive takes one reading of d as it arrives, with its line when known.
func (s *shard) receive(e *env, r *telemetry.Reading, line []byte) {
	d := e.state
	fp := fingerprint(r)
	en := entry{kind: entryReading, t: r.Time, fp: fp}
	inOrder := !r.Time.Before(d.Done) && len(d.rp.pending) == 0
	// In order, only readings at the newest time can be the same one.
	if (inOrder && d.rp.atTail(r.Time, fp)) || (!inOrder && d.rp.seen(r.Time, fp)) {
		s.e.m.duplicates.Inc()
		return
	}
	en.line = line
	if en.line == nil {
		en.line = telemetry.AppendLine(nil, r)
	}
	if inOrder {
		s.process(e, en, r)
		return
	}
	if s.e.opts.MaxAge > 0 && d.Done.Sub(r.Time) > s.e.opts.MaxAge {
		s.tooLate(e, r)
		return
	}
	if !d.rp.covers(r.Time) {
		if s.e.opts.History != nil {
			s.waitLate(e, r, en)
			return
		}
		s.tooLate(e, r)
		return
	}
	if urgent[r.Event] {
		// A fire alarm or a help button is raised at once; the re-run
		// finds the same key and leaves it alone.
		d.lateEvent(e, r)
	}
	// The line may share its array with other records (spool.Record): a
	// waiting reading keeps its own copy.
	en.line = append([]byte(nil), en.line...)
	d.rp.pending = append(d.rp.pending, en)
	if len(d.rp.pending) >= maxPending {
		s.rerun(e.ctx, d)
	}
}

// maxPending bounds the late readings a device holds before it re-runs.
const maxPending = 4096

// tooLate handles a reading older than the device's replay span.
func (s *shard) tooLate(e *env, r *telemetry.Reading) {
	d := e.state
	if r.Event != "" {
		// Events are facts at a time (a pickup, a button): they still
		// count with the rules that need no order.
		d.lateEvent(e, r)
		return
	}
	s.e.late.Add(1)
	s.e.m.late.WithLabelValues(r.Kind).Inc()
	s.e.lateLog(*r, d)
}

// rerun runs d again from the mark before its oldest pending reading, over
// the kept readings and the pending ones, then reconciles what it raised.
func (s *shard) rerun(ctx context.Context, d *deviceState) {
	rp := d.rp
	pend := rp.pending
	rp.pending = nil
	if len(pend) == 0 {
		return
	}
	sort.SliceStable(pend, func(i, j int) bool { return pend[i].t.Before(pend[j].t) })
	mi := rp.markFor(pend[0].t)
	m := rp.marks[mi]
	nd, err := decodeMark(&m)
	if err != nil {
		s.e.log.Error("replay mark unreadable: late readings left out", "device", d.ID, "error", err)
		return
	}
	started := time.Now()
	// The kept readings after the mark, merged with the pending ones.
	var kept []entry
	for off := m.hist; off < len(rp.hist); {
		en, next := nextEntry(rp.hist, off)
		kept = append(kept, en)
		off = next
	}
	hist := rp.hist // the entries reference it; process appends to a new one
	merged := make([]entry, 0, len(kept)+len(pend))
	i, j := 0, 0
	for i < len(kept) || j < len(pend) {
		if j == len(pend) || (i < len(kept) && !kept[i].t.After(pend[j].t)) {
			merged = append(merged, kept[i])
			i++
		} else {
			merged = append(merged, pend[j])
			j++
		}
	}
	before := map[string]bool{}
	for _, em := range rp.emits[:m.emits] {
		before[em.v.Key] = true
	}
	orig := append([]emission(nil), rp.emits[m.emits:]...)
	rp.hist = append(make([]byte, 0, len(hist)), hist[:m.hist]...) // trim works in place: not on hist
	rp.emits = rp.emits[:m.emits:m.emits]
	rp.marks = rp.marks[:mi]
	oldDone := d.Done
	nd.rp, nd.dirty = rp, true
	// Readings waiting for a read-back lie before the mark: the re-run
	// leaves them waiting.
	nd.Late, nd.rbBusy = d.Late, d.rbBusy
	s.devices[d.ID] = nd
	var got []Violation
	rp.capture = &got
	env := s.env(ctx, nd)
	for _, en := range merged {
		var r telemetry.Reading
		if en.kind == entryReading {
			var err error
			if r, err = s.parser.Line(en.line); err != nil {
				continue
			}
		}
		s.process(env, en, &r)
	}
	// The clock is not moved back to where it was: a device uploading its
	// buffer is not silent. What the clock raised beyond the readings is
	// carried until the device's time passes it (settle).
	_ = oldDone
	rp.capture = nil
	s.reconcile(env, before, orig, got)
	s.e.m.reruns.Inc()
	s.e.m.rerunReadings.Add(float64(len(merged)))
	s.e.m.rerunSeconds.Observe(time.Since(started).Seconds())
}

// reconcile hands on what a re-run raised that the first run did not, and
// withdraws what the first run raised that the re-run no longer supports;
// what the clock raised beyond the re-run's readings is carried.
func (s *shard) reconcile(e *env, before map[string]bool, orig []emission, got []Violation) {
	rp := e.state.rp
	orig = append(orig, rp.carried...)
	rp.carried = nil
	had := map[string]bool{}
	for i := range orig {
		had[emitID(&orig[i].v)] = true
	}
	now := map[string]bool{}
	for i := range got {
		now[got[i].Key] = true
		if !had[emitID(&got[i])] {
			s.raise(e.ctx, got[i])
		}
	}
	done := map[string]bool{}
	for _, em := range orig {
		k := em.v.Key
		if now[k] || before[k] || done[k] || em.v.Resolved {
			continue
		}
		done[k] = true
		if em.at.After(e.state.Done) {
			rp.carried = append(rp.carried, em)
			continue
		}
		s.withdraw(e.ctx, em.v)
	}
}

func emitID(v *Violation) string {
	if v.Resolved {
		return v.Key + "|resolved"
	}
	return v.Key
}

// settle withdraws the carried violations the device's time has passed
// without raising them again.
func (s *shard) settle(e *env) {
	rp := e.state.rp
	n := 0
	for _, em := range rp.carried {
		if em.at.After(e.state.Done) {
			rp.carried[n] = em
			n++
			continue
		}
		s.withdraw(e.ctx, em.v)
	}
	rp.carried = rp.carried[:n]
}

// out records v as raised while handling d and hands it to the sink, or to
// the re-run's capture.
func (s *shard) out(ctx context.Context, d *deviceState, v Violation) {
	d.dirty = true
	if d.rp != nil {
		slim := v
		slim.Evidence, slim.Geometry = nil, nil
		d.rp.emits = append(d.rp.emits, emission{at: d.Done, v: slim})
		if d.rp.capture != nil {
			*d.rp.capture = append(*d.rp.capture, v)
			return
		}
		for i, em := range d.rp.carried {
			if emitID(&em.v) == emitID(&v) {
				// Raised again as it was: it stands, nothing to hand on.
				d.rp.carried = append(d.rp.carried[:i], d.rp.carried[i+1:]...)
				return
			}
		}
	}
	s.raise(ctx, v)
}
