package violations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	// StateDir is where Run keeps the snapshot of detector state that goes
	// with its committed cursor. Empty keeps no snapshot: after a restart
	// detection resumes at the cursor with empty state.
	StateDir string
	// Registerer receives the engine's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the wall clock (default time.Now). Run advances event time
	// with it when the spool is drained, so rules fire without readings.
	Now func() time.Time
	// Tick is how often Run looks at the clock. Default 1s.
	Tick time.Duration
	// Checkpoint is how often Run saves state and commits its cursor.
	// Default 10s; a crash replays at most this much.
	Checkpoint time.Duration
	// MaxRecords is the most spool records Run reads at once. Default 512.
	MaxRecords int
}

// Engine runs every detector over the readings of the fleet, in event time,
// and hands what they raise to a Sink. Detector state is sharded by device:
// each shard goroutine alone owns its devices' state.
//
// An Engine is driven either by Run (as a spool consumer) or by
// ProcessReadings and AdvanceTo (tests, replays), never both at once.
// Offline may be called from any goroutine at any time.
type Engine struct {
	cfg     *fleet.Config
	dc      Config
	sink    Sink
	opts    EngineOptions
	log     *slog.Logger
	m       *metrics
	devices map[string]*fleet.Device
	loc     *time.Location
	night   [2]time.Duration
	// routes of each truck and sweeper, looked up once
	collect map[string][]*fleet.CollectionRoute
	sweep   map[string][]*fleet.SweepingRoute

	shards []*shard
	// maxEvent is the newest event time read; sentWM the watermark last
	// given to the shards. Both belong to the driving goroutine.
	maxEvent, sentWM time.Time
	running          atomic.Bool
	late             atomic.Int64

	mu    sync.Mutex
	wills []will
	wake  chan struct{}

	snap map[string]json.RawMessage // device -> state at the last checkpoint
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
	if dc.LoadSmoothing < 1 {
		dc.LoadSmoothing = 1
	}
	if dc.Spillage.Smoothing < 1 {
		dc.Spillage.Smoothing = 1
	}
	e := &Engine{cfg: cfg, dc: dc, sink: sink, opts: opts, log: opts.Logger, m: newMetrics(opts.Registerer),
		devices: map[string]*fleet.Device{}, loc: time.UTC, wake: make(chan struct{}, 1), snap: map[string]json.RawMessage{}}
	if a, b, err := parseNight(dc.ToiletLeak.Window); err == nil {
		e.night = [2]time.Duration{a, b}
	}
	e.collect = map[string][]*fleet.CollectionRoute{}
	e.sweep = map[string][]*fleet.SweepingRoute{}
	if cfg != nil {
		e.loc = cfg.Location()
		for i := range cfg.Devices {
			d := &cfg.Devices[i]
			e.devices[d.ID] = d
			if cfg.Map != nil {
				e.collect[d.ID] = cfg.Map.RoutesOfTruck(d.ID)
				e.sweep[d.ID] = cfg.Map.RoutesOfSweeper(d.ID)
			}
		}
	}
	for i := 0; i < opts.Shards; i++ {
		e.shards = append(e.shards, &shard{e: e, devices: map[string]*deviceState{}})
	}
	if cfg != nil {
		for i := range cfg.Devices {
			d := &cfg.Devices[i]
			e.shardFor(d.ID).devices[d.ID] = newDeviceState(d.ID, d.Kind)
		}
	}
	return e
}

func (e *Engine) shardFor(device string) *shard {
	h := fnv.New32a()
	h.Write([]byte(device))
	return e.shards[h.Sum32()%uint32(len(e.shards))]
}

// Late is the number of readings dropped because they came later than the
// allowed lateness (also counted in sanigate_violation_late_readings_total).
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

// advanceStep is how far event time moves before the clock rules of every
// device run again; rules fire at their own instants, whatever the step.
const advanceStep = 30 * time.Second

// ErrRunning is returned by ProcessReadings and AdvanceTo while Run drives
// the engine.
var ErrRunning = errors.New("violations: engine is running as a spool consumer")

// ProcessReadings runs the detectors over readings (any devices, any order)
// on the calling goroutine and returns once every violation they raise has
// been handed to the sink (a failing sink is retried until ctx ends). The clock watermark follows the newest event time
// less the lateness; AdvanceTo moves it further.
func (e *Engine) ProcessReadings(ctx context.Context, rs []telemetry.Reading) error {
	if e.running.Load() {
		return ErrRunning
	}
	for i := range rs {
		r := rs[i]
		if err := e.shardFor(r.Device).readings(ctx, []telemetry.Reading{r}); err != nil {
			return err
		}
		if r.Time.After(e.maxEvent) {
			e.maxEvent = r.Time
		}
	}
	if err := e.drainWills(ctx); err != nil {
		return err
	}
	return e.advanceSync(ctx, e.maxEvent.Add(-e.dc.Lateness.D()), false)
}

func (e *Engine) drainWills(ctx context.Context) error {
	for _, w := range e.takeWills() {
		if err := e.shardFor(w.device).will(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// AdvanceTo moves the watermark to t as if nothing from before t were still
// to come: readings up to t are released and time-window rules fire up to t
// (less each kind's upload delay). For tests and the end of a replay.
func (e *Engine) AdvanceTo(ctx context.Context, t time.Time) error {
	if e.running.Load() {
		return ErrRunning
	}
	if err := e.drainWills(ctx); err != nil {
		return err
	}
	return e.advanceSync(ctx, t, true)
}

func (e *Engine) advanceSync(ctx context.Context, wm time.Time, force bool) error {
	if !force && wm.Sub(e.sentWM) < advanceStep {
		return nil
	}
	if !wm.After(e.sentWM) {
		return nil
	}
	e.sentWM = wm
	e.m.watermark.Set(float64(wm.UnixNano()) / 1e9)
	for _, s := range e.shards {
		if err := s.advance(ctx, wm); err != nil {
			return err
		}
	}
	return nil
}

// shard owns the state of the devices that hash to it. In Run its methods
// are called only from its goroutine; in ProcessReadings only from the
// caller's.
type shard struct {
	e       *Engine
	devices map[string]*deviceState
	in      chan shardMsg
	wm      time.Time // the watermark this shard last advanced to
	err     error     // the sink refused and ctx ended: nothing may be committed
}

type shardMsg struct {
	readings []telemetry.Reading
	wm       time.Time
	will     *will
	barrier  chan<- shardReport
}

type shardReport struct {
	states map[string]json.RawMessage
	err    error
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
	e := s.e
	return &env{ctx: ctx, dc: &e.dc, cfg: e.cfg, dev: e.devices[d.ID], state: d, sh: s, devices: e.devices,
		night: e.night, loc: e.loc, collect: e.collect[d.ID], sweep: e.sweep[d.ID]}
}

func (s *shard) readings(ctx context.Context, rs []telemetry.Reading) error {
	lateness := s.e.dc.Lateness.D()
	for i := range rs {
		r := rs[i]
		d := s.device(r.Device, r.Kind)
		s.e.m.readings.Inc()
		if urgent[r.Event] {
			// A fire alarm or a help button must not wait the lateness
			// window: it is a fact on its own, handled at once by the rules
			// that need no order. Its release in order later is a no-op.
			d.lateEvent(s.env(ctx, d), &r)
		}
		if !d.insert(r) {
			if r.Event != "" {
				// Events are facts at a time (a pickup, a button): they
				// still count when they come after later samples, as the
				// events of a buffered upload do.
				d.lateEvent(s.env(ctx, d), &r)
				continue
			}
			s.e.late.Add(1)
			s.e.m.late.WithLabelValues(r.Kind).Inc()
			s.e.lateLog(r, d)
			continue
		}
		release := d.MaxTime.Add(-lateness)
		if s.wm.After(release) {
			release = s.wm
		}
		if len(d.Buf) > 0 && !d.Buf[0].Time.After(release) {
			d.advance(s.env(ctx, d), release, time.Time{})
		}
	}
	return s.err
}

// urgent lists the events handled as soon as they arrive.
var urgent = map[string]bool{"fire_alarm": true, "help_button": true}

func (s *shard) advance(ctx context.Context, wm time.Time) error {
	s.wm = wm
	for _, d := range s.devices {
		tick := wm.Add(-s.e.dc.uploadDelay(d.Kind))
		if (len(d.Buf) > 0 && !d.Buf[0].Time.After(wm)) || tick.After(d.Done) {
			d.advance(s.env(ctx, d), wm, tick)
		}
	}
	return s.err
}

func (s *shard) will(ctx context.Context, w will) error {
	d := s.device(w.device, "")
	if d.Kind == "" {
		if dev := s.e.devices[w.device]; dev != nil {
			d.Kind = dev.Kind
		}
	}
	d.dirty = true
	d.Offline.will(s.env(ctx, d), w.at)
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

// snapshot encodes the devices changed since the last one.
func (s *shard) snapshot() (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for id, d := range s.devices {
		if !d.dirty {
			continue
		}
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("violations: snapshot %s: %w", id, err)
		}
		out[id] = b
		d.dirty = false
	}
	return out, nil
}

func (s *shard) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.in:
			s.handle(ctx, m)
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
		st, err := s.snapshot()
		m.barrier <- shardReport{states: st, err: err}
	case m.will != nil:
		s.will(ctx, *m.will)
	case len(m.readings) > 0:
		s.readings(ctx, m.readings)
	case !m.wm.IsZero():
		s.advance(ctx, m.wm)
	}
}

// lateLog logs late readings at a bounded rate.
func (e *Engine) lateLog(r telemetry.Reading, d *deviceState) {
	if n := e.late.Load(); n&(n-1) == 0 { // 1, 2, 4, 8, ...
		e.log.Warn("reading later than the allowed lateness: dropped by the detectors", "device", r.Device, "kind", r.Kind,
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
	defer func() {
		stopShards()
		wg.Wait()
	}()

	type batch struct {
		recs []spool.Record
		err  error
	}
	batches := make(chan batch, 1)
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	go func() {
		for {
			recs, err := cons.Next(rctx, e.opts.MaxRecords, 4<<20)
			select {
			case batches <- batch{recs, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	ticker := time.NewTicker(e.opts.Tick)
	defer ticker.Stop()
	send := func(s *shard, m shardMsg) bool {
		select {
		case s.in <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	broadcast := func(wm time.Time) {
		if !wm.After(e.sentWM) {
			return
		}
		e.sentWM = wm
		e.m.watermark.Set(float64(wm.UnixNano()) / 1e9)
		for _, s := range e.shards {
			send(s, shardMsg{wm: wm})
		}
	}
	committed := cons.Committed()
	lastEnd := committed
	if skipUntil > lastEnd {
		lastEnd = skipUntil
	}
	caughtUp := false
	lastCheckpoint := time.Now() // the cadence is wall time even when Now is not
	checkpoint := func() error {
		if lastEnd <= committed {
			return nil
		}
		if err := e.checkpoint(cons, lastEnd); err != nil {
			return err
		}
		committed = lastEnd
		lastCheckpoint = time.Now()
		return nil
	}
	lateness := e.dc.Lateness.D()
	for {
		select {
		case <-ctx.Done():
			if err := e.finalCheckpoint(cons, lastEnd, committed); err != nil {
				e.log.Error("final checkpoint failed; the last readings will be replayed", "error", err)
			}
			return nil
		case <-e.wake:
			for _, w := range e.takeWills() {
				send(e.shardFor(w.device), shardMsg{will: &w})
			}
		case b := <-batches:
			if b.err != nil {
				if errors.Is(b.err, context.Canceled) || errors.Is(b.err, spool.ErrClosed) {
					_ = e.finalCheckpoint(cons, lastEnd, committed)
					return nil
				}
				return fmt.Errorf("violations: read spool: %w", b.err)
			}
			for _, rec := range b.recs {
				if rec.End <= skipUntil {
					continue // already in the restored state
				}
				rs, err := telemetry.ParseLines(rec.Data)
				if err != nil {
					e.m.badRecords.Inc()
					e.log.Warn("unreadable spool record; detectors skip what they cannot read", "offset", rec.Offset, "error", err)
				}
				if len(rs) > 0 {
					for i := range rs {
						if rs[i].Time.After(e.maxEvent) {
							e.maxEvent = rs[i].Time
						}
					}
					// A record is one device message: one shard.
					if !send(e.shardFor(rs[0].Device), shardMsg{readings: rs}) {
						// Stopping: commit only what the shards were given.
						if err := e.finalCheckpoint(cons, lastEnd, committed); err != nil {
							e.log.Error("final checkpoint failed; the last readings will be replayed", "error", err)
						}
						return nil
					}
				}
				lastEnd = rec.End
			}
			caughtUp = len(b.recs) < e.opts.MaxRecords
			if wm := e.maxEvent.Add(-lateness); wm.Sub(e.sentWM) >= advanceStep {
				broadcast(wm)
			}
		case <-ticker.C:
			if caughtUp {
				broadcast(e.opts.Now().Add(-lateness))
			}
			if time.Since(lastCheckpoint) >= e.opts.Checkpoint && lastEnd > committed {
				if err := checkpoint(); err != nil {
					e.log.Error("checkpoint failed; will retry", "error", err)
				}
			}
		}
	}
}

// gather asks every shard for its changed state once it has processed all
// that was sent before; it fails if a shard lost a violation.
func (e *Engine) gather(ctx context.Context) (map[string]json.RawMessage, error) {
	reply := make(chan shardReport, len(e.shards))
	for _, s := range e.shards {
		select {
		case s.in <- shardMsg{barrier: reply}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out := map[string]json.RawMessage{}
	var errs []error
	for range e.shards {
		select {
		case r := <-reply:
			if r.err != nil {
				errs = append(errs, r.err)
			}
			for k, v := range r.states {
				out[k] = v
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, errors.Join(errs...)
}

func (e *Engine) finalCheckpoint(cons *spool.Consumer, lastEnd, committed int64) error {
	if lastEnd <= committed {
		return nil
	}
	return e.checkpoint(cons, lastEnd)
}
