package violations

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
)

// EngineOptions tune an Engine; zero fields take the defaults.
type EngineOptions struct {
	// Shards is the number of goroutines detection is spread over, by a
	// hash of the device id. Default GOMAXPROCS.
	Shards int
	// StateDir is where Run keeps the state log of the detectors that goes
	// with its committed cursor (snapshot.go). Empty keeps none: after a
	// restart detection resumes at the cursor with empty state.
	StateDir string
	// Registerer receives the engine's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the wall clock (default time.Now). When the spool is drained,
	// Run ticks every device to it (less ClockGrace and the device's usual
	// delay), so that time-window rules fire without readings.
	Now func() time.Time
	// MaxAge is the oldest a late reading may be and still re-run its
	// device (the ingest max_age). Default 30 days.
	MaxAge time.Duration
	// Tick is how often Run looks at the clock. Default 1s.
	Tick time.Duration
	// Checkpoint is how often Run saves state and commits its cursor.
	// Default 10s; a crash replays at most this much.
	Checkpoint time.Duration
	// MaxRecords is the most spool records Run reads at once. Default 512.
	MaxRecords int
	// History, when set, is read back to re-judge readings older than what
	// a device holds in memory (readback.go); nil leaves them out as late.
	// Under Run one worker goroutine does the read-backs; under
	// ProcessReadings and AdvanceTo they run on the caller's goroutine
	// before the call returns.
	History History
	// ReadbackQueue is how many devices may wait for their read-back at
	// once; more wait in their shards. Default the Config's readback_queue.
	ReadbackQueue int
	// Watch says which registered devices the engine watches before they
	// first report, so that one never heard from is flagged
	// device_offline; nil watches every one. A partition's engine watches
	// the devices of its partition.
	Watch func(device string) bool
}

// Engine runs every detector over the readings of the fleet, each device in
// its own event time, and hands what they raise to a Sink. Detector state is
// sharded by device: each shard goroutine alone owns its devices' state.
// A device's readings are judged as they arrive; late ones re-run the device
// (replay.go).
//
// An Engine is driven either by Run (as a spool consumer) or by
// ProcessReadings and AdvanceTo (tests, replays), never both at once.
// Offline may be called from any goroutine at any time. Readings older than
// a device's memory are re-judged from its History, when one is given
// (readback.go).
type Engine struct {
	live atomic.Pointer[engineLive]
	sink Sink
	opts EngineOptions
	log  *slog.Logger
	m    *metrics

	shards []*shard
	// sentClock is the clock last given to the shards; it belongs to the
	// driving goroutine.
	sentClock time.Time
	// began is when watching began: a device first ticked later is taken
	// as watched since then (deviceState.Since), so that a route window
	// already open when it first reports is judged whole.
	began   time.Time
	running atomic.Bool
	late    atomic.Int64

	mu    sync.Mutex
	wills []will
	wake  chan struct{}

	state *stateLog // the snapshot log, while Run runs with a StateDir

	rbq chan *readbackJob // devices waiting for their read-back (readback.go)
}

type will struct {
	device string
	at     time.Time
}

// NewEngine builds the engine for the fleet in cfg with thresholds dc.
func NewEngine(cfg *fleet.Config, dc Config, sink Sink, opts EngineOptions) *Engine {
	if opts.Shards <= 0 {
		opts.Shards = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.Checkpoint <= 0 {
		opts.Checkpoint = 10 * time.Second
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = 512
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 30 * 24 * time.Hour
	}
	if opts.ReadbackQueue <= 0 {
		opts.ReadbackQueue = dc.ReadbackQueue
	}
	if opts.ReadbackQueue <= 0 {
		opts.ReadbackQueue = 64
	}
	e := &Engine{sink: sink, opts: opts, log: opts.Logger, m: newMetrics(opts.Registerer), wake: make(chan struct{}, 1),
		rbq: make(chan *readbackJob, opts.ReadbackQueue)}
	e.live.Store(newEngineLive(cfg, dc))
	for i := 0; i < opts.Shards; i++ {
		e.shards = append(e.shards, &shard{e: e, devices: map[string]*deviceState{}, rerunQ: map[string]bool{},
			rbWait: map[string]bool{}})
	}
	for _, s := range e.shards {
		s.seed(e.cur())
	}
	return e
}

// engineLive is what a configuration reload replaces at once: the fleet,
// the map and routes, and the thresholds. Shards read it through cur.
type engineLive struct {
	cfg     *fleet.Config
	dc      Config
	devices map[string]*fleet.Device
	loc     *time.Location
	night   [2]time.Duration
	// routes of each truck and sweeper, looked up once
	collect map[string][]*fleet.CollectionRoute
	sweep   map[string][]*fleet.SweepingRoute
}

func newEngineLive(cfg *fleet.Config, dc Config) *engineLive {
	if dc.LoadSmoothing < 1 {
		dc.LoadSmoothing = 1
	}
	if dc.Spillage.Smoothing < 1 {
		dc.Spillage.Smoothing = 1
	}
	l := &engineLive{cfg: cfg, dc: dc, devices: map[string]*fleet.Device{}, loc: time.UTC,
		collect: map[string][]*fleet.CollectionRoute{}, sweep: map[string][]*fleet.SweepingRoute{}}
	if a, b, err := parseNight(dc.ToiletLeak.Window); err == nil {
		l.night = [2]time.Duration{a, b}
	}
	if cfg != nil {
		l.loc = cfg.Location()
		for i := range cfg.Devices {
			d := &cfg.Devices[i]
			l.devices[d.ID] = d
			if cfg.Map != nil {
				l.collect[d.ID] = cfg.Map.RoutesOfTruck(d.ID)
				l.sweep[d.ID] = cfg.Map.RoutesOfSweeper(d.ID)
			}
		}
	}
	return l
}

// cur returns the fleet, map and thresholds in force.
func (e *Engine) cur() *engineLive { return e.live.Load() }

// Reload makes the detectors judge by the fleet, map, routes and
// thresholds of cfg and dc from now on (dc as FromConfig made it; it was
// checked when cfg was loaded). It may be called from any goroutine while
// the engine runs: each reading is judged wholly by the old or wholly by
// the new version. Detector state is kept: a device that stays keeps its
// open spells and raised violations; a new device starts fresh; a removed
// one is no longer judged (its state waits, in case it comes back).
func (e *Engine) Reload(cfg *fleet.Config, dc Config) {
	e.live.Store(newEngineLive(cfg, dc))
}

func (e *Engine) shardFor(device string) *shard { return e.shards[e.shardIndex(device)] }

// shardIndex is the index of device's shard: FNV-1a (32 bits) of its id.
func (e *Engine) shardIndex(device string) int {
	h := uint32(2166136261)
	for i := 0; i < len(device); i++ {
		h = (h ^ uint32(device[i])) * 16777619
	}
	return int(h % uint32(len(e.shards)))
}

// Late is the number of readings left out of detection because they came
// before their device's replay span (also counted in
// sanigate_violation_late_readings_total).
func (e *Engine) Late() int64 { return e.late.Load() }

// Offline reports a device's last will (the broker saw it disconnect at at).
// The device_offline violation is raised at once, unless one is open.
func (e *Engine) Offline(device string, at time.Time) {
	e.mu.Lock()
	e.wills = append(e.wills, will{device, at})
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Engine) takeWills() []will {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.wills
	e.wills = nil
	return w
}

// ErrRunning is returned by ProcessReadings and AdvanceTo while Run drives
// the engine.
var ErrRunning = errors.New("violations: engine is running as a spool consumer")

// ProcessReadings runs the detectors over readings (any devices, any order)
// on the calling goroutine and returns once every violation they raise has
// been handed to the sink (a failing sink is retried until ctx ends). Each
// device is judged in its own event time: a reading older than what its
// device already passed re-runs it. The clock of other devices does not move;
// AdvanceTo moves it.
func (e *Engine) ProcessReadings(ctx context.Context, rs []telemetry.Reading) error {
	if e.running.Load() {
		return ErrRunning
	}
	if e.began.IsZero() && len(rs) > 0 {
		// A replay begins with its first reading; its devices are taken as
		// watched as long before it as a batched upload may hold readings.
		dc := &e.cur().dc
		e.began = rs[0].Time.Add(-dc.Lateness.D() - dc.uploadDelay(telemetry.KindTruck))
	}
	for i := range rs {
		if err := e.shardFor(rs[i].Device).readings(ctx, rs[i:i+1], nil, time.Time{}); err != nil {
			return err
		}
	}
	for _, s := range e.shards {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	if err := e.drainReadbacks(ctx); err != nil {
		return err
	}
	return e.drainWills(ctx)
}

func (e *Engine) drainWills(ctx context.Context) error {
	for _, w := range e.takeWills() {
		if err := e.shardFor(w.device).will(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// AdvanceTo ticks every device's clock to t, as if nothing from before t
// were still to come: time-window rules fire up to t. Readings from before t
// that come later re-run their device. For tests and the end of a replay.
func (e *Engine) AdvanceTo(ctx context.Context, t time.Time) error {
	if e.running.Load() {
		return ErrRunning
	}
	if err := e.drainWills(ctx); err != nil {
		return err
	}
	for _, s := range e.shards {
		if err := s.advance(ctx, t); err != nil {
			return err
		}
	}
	e.m.clock.Set(float64(t.UnixNano()) / 1e9)
	return e.drainReadbacks(ctx)
}

// shard owns the state of the devices that hash to it. In Run its methods
// are called only from its goroutine; in ProcessReadings only from the
// caller's.
type shard struct {
	e       *Engine
	devices map[string]*deviceState
	in      chan shardMsg
	err     error // the sink refused and ctx ended: nothing may be committed
	// rerun lists devices with late readings waiting for their re-run.
	rerunQ map[string]bool
	// rbWait lists devices with readings waiting for a read-back that is
	// not queued yet (readback.go).
	rbWait map[string]bool
	// lateBytes is what its devices' readings waiting for a read-back
	// hold, against its share of maxWaitingBytes.
	lateBytes int
	marks     markCodec        // encodes its devices' replay marks
	parser    telemetry.Parser // reads kept lines back for re-runs
	seeded    *engineLive      // the configuration whose devices it holds a state for
}

type shardMsg struct {
	recs     []shardRecord // the shard's records of a spool batch, in order
	clock    time.Time
	will     *will
	readback *readbackDone
	barrier  chan<- shardReport
	all      bool // barrier: report every device, not only changed ones
}

// shardRecord is the device readings of one spool record.
type shardRecord struct {
	readings []telemetry.Reading
	lines    [][]byte  // each reading's line, when known
	arrived  time.Time // when the record was appended to the spool
	shard    int       // the index of the device's shard
}

type shardReport struct {
	states []byte // gob stream of (id, state) pairs
	n      int
	err    error
}

// seed gives every watched device of l that hashes to s a state, so that
// the clock ticks it before it first reports.
func (s *shard) seed(l *engineLive) {
	s.seeded = l
	for id, dev := range l.devices {
		if _, ok := s.devices[id]; ok || s.e.shardFor(id) != s || (s.e.opts.Watch != nil && !s.e.opts.Watch(id)) {
			continue
		}
		s.devices[id] = newDeviceState(id, dev.Kind)
	}
}

func (s *shard) device(id, kind string) *deviceState {
	d, ok := s.devices[id]
	if !ok {
		d = newDeviceState(id, kind)
		s.devices[id] = d
	}
	return d
}

func (s *shard) env(ctx context.Context, d *deviceState) *env {
	l := s.e.cur()
	return &env{ctx: ctx, dc: &l.dc, cfg: l.cfg, dev: l.devices[d.ID], state: d, sh: s, devices: l.devices,
		night: l.night, loc: l.loc, collect: l.collect[d.ID], sweep: l.sweep[d.ID]}
}

func (s *shard) readings(ctx context.Context, rs []telemetry.Reading, lines [][]byte, arrived time.Time) error {
	for i := range rs {
		r := &rs[i]
		if r.Device == "" {
			continue
		}
		d := s.device(r.Device, r.Kind)
		s.e.m.readings.Inc()
		if !arrived.IsZero() {
			d.rp.delay.observe(arrived.Sub(r.Time))
		}
		pending := len(d.rp.pending)
		var line []byte
		if lines != nil {
			line = lines[i]
		}
		s.receive(s.env(ctx, d), r, line)
		if len(d.rp.pending) > pending {
			s.rerunQ[d.ID] = true
		}
	}
	return s.err
}

// flush runs the re-runs that late readings asked for, and offers the
// devices waiting for a read-back to its queue.
func (s *shard) flush(ctx context.Context) error {
	for id := range s.rerunQ {
		if d := s.devices[id]; d != nil {
			s.rerun(ctx, d)
		}
		delete(s.rerunQ, id)
	}
	if len(s.rbWait) > 0 {
		s.offerReadbacks()
	}
	return s.err
}

// urgent lists the events raised as soon as they arrive, even late.
var urgent = map[string]bool{"fire_alarm": true, "help_button": true}

// advance ticks every device to t (the clock), less the device's usual
// delay between its readings' times and their arrival.
func (s *shard) advance(ctx context.Context, t time.Time) error {
	s.flush(ctx)
	if l := s.e.cur(); s.seeded != l {
		s.seed(l)
	}
	for _, d := range s.devices {
		if t := t.Add(-min(d.rp.delay.usual(), s.e.opts.MaxAge)); t.After(d.Done) {
			if len(d.rp.marks) == 0 && d.LastSeen.IsZero() {
				// Never heard from: mark the empty state, so that its first
				// readings, older than the clock, re-run from it.
				s.takeMark(d, t)
			}
			if d.LastSeen.IsZero() && d.Watched.IsZero() {
				d.Watched, d.dirty = t, true // kept across a restart
			}
			n := len(d.rp.emits)
			env := s.env(ctx, d)
			d.tick(env, t)
			if len(d.rp.emits) != n {
				d.dirty = true
			}
			if len(d.rp.carried) > 0 {
				s.settle(env)
			}
		}
	}
	return s.err
}

func (s *shard) will(ctx context.Context, w will) error {
	d := s.device(w.device, "")
	if d.Kind == "" {
		if dev := s.e.cur().devices[w.device]; dev != nil {
			d.Kind = dev.Kind
		}
	}
	t := w.at
	if t.Before(d.Done) {
		t = d.Done
	}
	en := entry{kind: entryWill, t: t}
	if len(d.rp.pending) > 0 {
		d.rp.pending = append(d.rp.pending, en)
		return s.err
	}
	s.process(s.env(ctx, d), en, nil)
	return s.err
}

// raise hands v to the sink, retrying while the sink fails, until ctx ends.
func (s *shard) raise(ctx context.Context, v Violation) {
	s.e.m.raised.WithLabelValues(v.Type, v.Severity, fmt.Sprint(v.Resolved)).Inc()
	backoff := 50 * time.Millisecond
	for {
		err := s.e.sink.Raise(ctx, v)
		if err == nil {
			return
		}
		s.e.m.sinkErrors.Inc()
		s.e.log.Warn("sink refused a violation; retrying", "device", v.Device, "type", v.Type, "key", v.Key, "error", err)
		select {
		case <-ctx.Done():
			s.err = fmt.Errorf("violations: raise %s: %w", v.Key, err)
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// withdraw takes back v through the sink, when it can, retrying like raise.
func (s *shard) withdraw(ctx context.Context, v Violation) {
	w, ok := s.e.sink.(Withdrawer)
	s.e.m.withdrawn.Inc()
	if !ok {
		s.e.log.Warn("late readings no longer support a violation; the sink cannot withdraw it", "device", v.Device, "key", v.Key)
		return
	}
	reason := "withdrawn: readings that arrived late no longer support it"
	backoff := 50 * time.Millisecond
	for {
		err := w.Withdraw(ctx, v, reason)
		if err == nil {
			s.e.log.Info("violation withdrawn", "device", v.Device, "type", v.Type, "key", v.Key)
			return
		}
		s.e.m.sinkErrors.Inc()
		select {
		case <-ctx.Done():
			s.err = fmt.Errorf("violations: withdraw %s: %w", v.Key, err)
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// snapshot encodes the devices changed since the last one (all of them
// with all) as one gob stream of id and state pairs.
func (s *shard) snapshot(all bool) ([]byte, int, error) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	n := 0
	for id, d := range s.devices {
		if !all && !d.dirty && d.Done.Sub(d.savedDone) < time.Minute {
			continue
		}
		if err := enc.Encode(id); err != nil {
			return nil, 0, fmt.Errorf("violations: snapshot %s: %w", id, err)
		}
		if err := enc.Encode(d); err != nil {
			return nil, 0, fmt.Errorf("violations: snapshot %s: %w", id, err)
		}
		d.dirty, d.savedDone = false, d.Done
		n++
	}
	return buf.Bytes(), n, nil
}

func (s *shard) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.in:
			s.handle(ctx, m)
			if len(s.in) == 0 && (len(s.rerunQ) > 0 || len(s.rbWait) > 0) {
				s.flush(ctx) // a burst of late readings is over: re-run once
			}
		}
	}
}

func (s *shard) handle(ctx context.Context, m shardMsg) {
	defer func() {
		if p := recover(); p != nil {
			s.e.m.panics.Inc()
			s.e.log.Error("detector panic", "panic", p)
		}
	}()
	switch {
	case m.barrier != nil:
		if s.err != nil {
			m.barrier <- shardReport{err: s.err}
			return
		}
		s.flush(ctx)
		st, n, err := s.snapshot(m.all)
		m.barrier <- shardReport{states: st, n: n, err: err}
	case m.will != nil:
		s.will(ctx, *m.will)
	case m.readback != nil:
		s.doneReadback(*m.readback)
	case len(m.recs) > 0:
		for _, rc := range m.recs {
			s.readings(ctx, rc.readings, rc.lines, rc.arrived)
		}
	case !m.clock.IsZero():
		s.advance(ctx, m.clock)
	}
}

// lateLog logs late readings at a bounded rate.
func (e *Engine) lateLog(r telemetry.Reading, d *deviceState) {
	if n := e.late.Load(); n&(n-1) == 0 { // 1, 2, 4, 8, ...
		e.log.Warn("reading older than its device's replay span: left out of detection", "device", r.Device, "kind", r.Kind,
			"time", r.Time, "processed_to", d.Done, "late_total", n)
	}
}

// Run consumes the spool from cons's cursor until ctx ends (it then returns
// nil) or the spool fails. It commits the cursor, together with a snapshot of
// detector state when StateDir is set, only once every reading before it has
// been processed and its violations handed to the sink. See snapshot.go for
// how a restart resumes.
func (e *Engine) Run(ctx context.Context, cons *spool.Consumer) error {
	if !e.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer e.running.Store(false)
	skipUntil, err := e.restore(cons)
	if err != nil {
		return err
	}
	if e.began.IsZero() {
		e.began = e.opts.Now()
	}
	defer e.startShards(ctx)()
	if e.opts.History != nil {
		e.kickReadbacks(ctx) // devices restored with readings waiting for a read-back
	}
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	batches := readBatches(rctx, cons, e.opts.MaxRecords)
	ticker := time.NewTicker(e.opts.Tick)
	defer ticker.Stop()
	r := &runner{e: e, ctx: ctx, cons: cons, skipUntil: skipUntil, committed: cons.Committed(),
		lastCheckpoint: time.Now()} // the cadence is wall time even when Now is not
	// A spool committed to its end is drained before any batch says so:
	// the clock ticks even if nothing more is appended (a silent fleet).
	r.caughtUp = cons.Lag() == 0
	r.lastEnd = max(r.committed, skipUntil)
	for {
		select {
		case <-ctx.Done():
			r.finish()
			return nil
		case <-e.wake:
			for _, w := range e.takeWills() {
				r.send(e.shardFor(w.device), shardMsg{will: &w})
			}
		case b := <-batches:
			if b.err != nil {
				if errors.Is(b.err, context.Canceled) || errors.Is(b.err, spool.ErrClosed) {
					r.finish()
					return nil
				}
				return fmt.Errorf("violations: read spool: %w", b.err)
			}
			if !r.handle(b.recs) {
				r.finish() // stopping: commit only what the shards were given
				return nil
			}
		case <-ticker.C:
			r.tick()
		}
	}
}

// startShards runs a goroutine per shard, until the returned function
// stops them (it also closes the state log).
func (e *Engine) startShards(ctx context.Context) (stop func()) {
	sctx, stopShards := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, s := range e.shards {
		s.in = make(chan shardMsg, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(sctx)
		}()
	}
	if e.opts.History != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.readbacks(sctx)
		}()
	}
	return func() {
		stopShards()
		wg.Wait()
		if e.state != nil && e.state.f != nil {
			e.state.f.Close()
			e.state.f = nil
		}
	}
}

// batch is what the spool reader hands Run: records, or the error that
// ended reading.
type batch struct {
	recs []spool.Record
	err  error
}

// readBatches reads cons in a goroutine until ctx ends or reading fails.
func readBatches(ctx context.Context, cons *spool.Consumer, maxRecords int) <-chan batch {
	batches := make(chan batch, 1)
	go func() {
		for {
			recs, err := cons.Next(ctx, maxRecords, 4<<20)
			select {
			case batches <- batch{recs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return batches
}

// runner is Run's own state: what was handed to the shards and what is
// committed. It belongs to Run's goroutine.
type runner struct {
	e              *Engine
	ctx            context.Context
	cons           *spool.Consumer
	skipUntil      int64 // records ending here or before are in the restored state
	lastEnd        int64 // the end of the last record handed to the shards
	committed      int64
	caughtUp       bool // the last batch was not full: the spool is drained
	lastCheckpoint time.Time
	parser         telemetry.Parser // keeps the fleet's tag values and field names
	blocks         readingBlocks
	got            []shardRecord // scratch: a batch's records, in order
	counts         []int         // scratch: where each shard's records end
	// torn: stopping left a batch handed to some shards and not others,
	// so what the shards hold matches no record boundary and nothing more
	// may be committed.
	torn bool
}

// send hands m to s, unless Run is stopping.
func (r *runner) send(s *shard, m shardMsg) bool {
	select {
	case s.in <- m:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// handle hands a batch's device readings to their shards, one message a
// shard rather than one a record, so that a small batch wakes each shard
// once; false when Run is stopping.
func (r *runner) handle(recs []spool.Record) bool {
	got := r.got[:0]
	end := r.lastEnd
	for _, rec := range recs {
		if rec.End <= r.skipUntil {
			continue // already in the restored state
		}
		rs, lines := r.e.deviceReadings(rec, &r.parser, &r.blocks)
		// A record is one device message: one shard.
		if len(rs) > 0 {
			got = append(got, shardRecord{readings: rs, lines: lines, arrived: rec.Appended, shard: r.e.shardIndex(rs[0].Device)})
		}
		end = rec.End
	}
	r.got = got
	if len(got) > 0 {
		// One array for the batch, each shard's records in a run of it.
		counts := r.counts[:0]
		for range r.e.shards {
			counts = append(counts, 0)
		}
		for i := range got {
			counts[got[i].shard]++
		}
		all := make([]shardRecord, len(got))
		at := 0
		for i, n := range counts {
			counts[i] = at
			at += n
		}
		for i := range got {
			all[counts[got[i].shard]] = got[i]
			counts[got[i].shard]++
		}
		r.counts = counts
		sent, from := false, 0
		for i, to := range counts {
			if to == from {
				continue
			}
			if !r.deliver(r.e.shards[i], shardMsg{recs: all[from:to:to]}, sent) {
				r.torn = sent
				return false
			}
			sent, from = true, to
		}
		clear(got) // the runner's scratch must not hold the readings
	}
	r.lastEnd = end
	r.caughtUp = len(recs) < r.e.opts.MaxRecords
	return true
}

// deliverTimeout bounds how long the rest of a batch part of which the
// shards already hold may wait for a shard once Run is stopping (a shard
// stuck on a failing sink); the final checkpoint waits as long.
const deliverTimeout = 30 * time.Second

// deliver hands m to s, waiting for it as long as Run runs. Once Run is
// stopping it gives up, unless rest (part of the batch is with other
// shards): then it waits up to deliverTimeout more, so that what the shards
// hold ends at a record boundary. A shard slow for longer while Run runs
// must not end it: that would stop detection with its context live.
func (r *runner) deliver(s *shard, m shardMsg, rest bool) bool {
	select {
	case s.in <- m:
		return true
	default:
	}
	if r.send(s, m) {
		return true
	}
	if !rest {
		return false
	}
	t := time.NewTimer(deliverTimeout)
	defer t.Stop()
	select {
	case s.in <- m:
		return true
	case <-t.C:
		return false
	}
}

// tick moves the shards' clock once the spool is drained, and checkpoints
// at the engine's cadence.
func (r *runner) tick() {
	e := r.e
	if t := e.opts.Now().Add(-e.cur().dc.ClockGrace.D()); r.caughtUp && t.After(e.sentClock) {
		e.sentClock = t
		e.m.clock.Set(float64(t.UnixNano()) / 1e9)
		for _, s := range e.shards {
			r.send(s, shardMsg{clock: t})
		}
	}
	if time.Since(r.lastCheckpoint) < e.opts.Checkpoint || r.lastEnd <= r.committed {
		return
	}
	if err := e.checkpoint(r.cons, r.lastEnd); err != nil {
		e.log.Error("checkpoint failed; will retry", "error", err)
		return
	}
	r.committed, r.lastCheckpoint = r.lastEnd, time.Now()
}

// finish commits what the shards were given, as Run stops.
func (r *runner) finish() {
	if r.torn {
		r.e.log.Error("stopping with a batch handed to only some shards: nothing more is committed; the readings since the last checkpoint will be replayed")
		return
	}
	if err := r.e.finalCheckpoint(r.cons, r.lastEnd, r.committed); err != nil {
		r.e.log.Error("final checkpoint failed; the last readings will be replayed", "error", err)
	}
}

// gather asks every shard for its changed state (every state with all) once
// it has processed all that was sent before; it fails if a shard lost a
// violation.
func (e *Engine) gather(ctx context.Context, all bool) ([]shardReport, error) {
	reply := make(chan shardReport, len(e.shards))
	for _, s := range e.shards {
		select {
		case s.in <- shardMsg{barrier: reply, all: all}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var out []shardReport
	var errs []error
	for range e.shards {
		select {
		case r := <-reply:
			if r.err != nil {
				errs = append(errs, r.err)
			}
			out = append(out, r)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, errors.Join(errs...)
}

// deviceReadings returns the device readings of a spool record: none for
// the gateway's own derived records (violations, coverage, case events and
// KPIs), which the detectors must not read back, nor for lines of segments
// from before records were typed that are not of a device kind.
//
// It also returns each reading's line, when the record holds exactly one
// line per reading, so that the replay history keeps them without encoding
// them again.
func (e *Engine) deviceReadings(rec spool.Record, p *telemetry.Parser, a *readingBlocks) ([]telemetry.Reading, [][]byte) {
	if rec.Type != spool.TypeReading {
		e.m.derived.Inc()
		return nil, nil
	}
	// At most one reading a newline, and one more.
	n := bytes.Count(rec.Data, []byte{'\n'}) + 1
	rs, lines := a.take(n)
	var err error
	for data := rec.Data; len(data) > 0; {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var r telemetry.Reading
		if r, err = p.Line(l); err != nil {
			break
		}
		if r.Device == "" || !deviceKinds[r.Kind] {
			e.m.derived.Inc()
			continue
		}
		rs = append(rs, r)
		lines = append(lines, l)
	}
	if err != nil {
		e.m.badRecords.Inc()
		e.log.Warn("unreadable spool record; detectors skip what they cannot read", "offset", rec.Offset, "error", err)
		lines = nil
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs, lines
}

// readingBlocks hands out the slices deviceReadings fills, carved from
// blocks shared between records rather than made for each: a block is
// never handed out twice, so a slice given to a shard is never written
// again by the runner.
type readingBlocks struct {
	rs    []telemetry.Reading
	lines [][]byte
}

// readingBlock is how many readings a block holds; a record with more than
// a quarter of it gets slices of its own.
const readingBlock = 128

// take returns empty slices with room for n readings and their lines.
func (a *readingBlocks) take(n int) ([]telemetry.Reading, [][]byte) {
	if n > readingBlock/4 {
		return make([]telemetry.Reading, 0, n), make([][]byte, 0, n)
	}
	if len(a.rs) < n {
		a.rs, a.lines = make([]telemetry.Reading, readingBlock), make([][]byte, readingBlock)
	}
	rs, lines := a.rs[:0:n], a.lines[:0:n]
	a.rs, a.lines = a.rs[n:], a.lines[n:]
	return rs, lines
}

// deviceKinds are the measurements of device readings and events.
var deviceKinds = map[string]bool{telemetry.KindBin: true, telemetry.KindTruck: true, telemetry.KindToilet: true,
	telemetry.KindSweeper: true, telemetry.KindWeighbridge: true}

func (e *Engine) finalCheckpoint(cons *spool.Consumer, lastEnd, committed int64) error {
	if lastEnd <= committed {
		return nil
	}
	return e.checkpoint(cons, lastEnd)
}
