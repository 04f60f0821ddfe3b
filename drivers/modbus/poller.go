package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/telemetry"
)

// Emitter receives the readings of polled devices; the gateway's pipeline
// implements it. Emit is called from one goroutine per device, so calls for
// different devices run concurrently, and calls for one device never overlap.
// Emit may block (the device's next poll waits; other devices do not). The
// readings slice and its readings belong to the Emitter once Emit returns nil.
// When Emit returns an error (ErrBackpressure, wrapped, when the spool is full)
// the poller keeps only the newest unsent reading of the device and offers it
// again on the next cycle; older ones are dropped and counted.
type Emitter interface {
	Emit(rs []telemetry.Reading) error
}

// ErrBackpressure is the error, wrapped or bare, an Emitter returns when it
// cannot take readings now (the spool is at its quota). The poller treats any
// Emit error the same way, but logs this one as back-pressure, not a fault.
// It is the pipeline's telemetry.ErrFull, so the gateway's pipeline matches.
var ErrBackpressure = telemetry.ErrFull

// ErrClosed is returned by Run on a Poller that was closed or is running.
var ErrClosed = errors.New("modbus: poller closed")

// Options are the optional dependencies of a Poller.
type Options struct {
	// Registerer receives the poller's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives state changes of devices (down, back up), not every
	// failed poll; nil discards.
	Logger *slog.Logger
	// Loops, when set, is told when a device's polling loop fails and is
	// restarted, and when it runs again (supervise.go).
	Loops LoopWatcher
}

// Poller polls every device of a Config on its own goroutine. Update
// changes the set of devices while it runs (update.go).
type Poller struct {
	em    Emitter
	log   *slog.Logger
	m     *metrics
	loops LoopWatcher

	upd sync.Mutex // one Update at a time

	mu      sync.Mutex // guards what follows, and each device's done and cancel
	devices []*device  // in configuration order
	byID    map[string]*device
	state   int                // 0 idle, 1 running, 2 closed
	runCtx  context.Context    // the running Run's context; nil when device loops may not start
	stop    context.CancelFunc // ends the running Run
	stopped chan struct{}      // closed when the running Run returned
	loopsWG sync.WaitGroup     // device loops of the running Run
}

// NewPoller prepares polling of cfg's devices, emitting to em. It registers
// the metrics on opts.Registerer and opens no connection. Device ids must be
// unique, as ParseConfig makes them.
func NewPoller(cfg *Config, em Emitter, opts Options) (*Poller, error) {
	if em == nil {
		return nil, errors.New("modbus: NewPoller needs an Emitter")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("modbus: registering metrics: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Poller{em: em, log: log, m: m, byID: map[string]*device{}, loops: opts.Loops}
	for i := range cfg.Devices {
		if _, dup := p.byID[cfg.Devices[i].ID]; dup {
			continue
		}
		dv := newDevice(&cfg.Devices[i])
		p.devices = append(p.devices, dv)
		p.byID[dv.cfg.ID] = dv
		m.device(dv.cfg.ID)
	}
	return p, nil
}

// newDevice copies d, so that later changes to the caller's Config do not
// reach a running loop, and plans its requests.
func newDevice(d *Device) *device {
	c := *d
	c.Registers = append([]Register(nil), d.Registers...)
	dv := &device{cfg: &c, last: new(atomic.Int64)}
	dv.plan = plan(dv.cfg)
	return dv
}

// Run polls until ctx ends or Close is called, then closes every connection
// and returns nil once every device goroutine has stopped. A poll in flight
// finishes first, so stopping takes at most one request timeout. A device
// loop that panics is recovered and restarted (supervise.go). Devices that
// Update adds while Run runs are polled at once; Run keeps running with no
// device at all, waiting for some. Run may be called again after it
// returned, so a supervisor can restart it; it returns ErrClosed after Close
// or while another Run is running.
func (p *Poller) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.state != 0 {
		p.mu.Unlock()
		return ErrClosed
	}
	ctx, p.stop = context.WithCancel(ctx)
	p.state = 1
	stopped := make(chan struct{})
	p.stopped = stopped
	p.runCtx = ctx
	for _, dv := range p.devices {
		p.startLoop(dv)
	}
	p.mu.Unlock()

	<-ctx.Done()
	// No loop starts after runCtx is cleared, so the wait group only falls.
	p.mu.Lock()
	p.runCtx = nil
	p.mu.Unlock()
	p.loopsWG.Wait()
	p.mu.Lock()
	for _, dv := range p.devices {
		dv.cancel, dv.done = nil, nil
	}
	if p.state == 1 {
		p.state = 0
	}
	p.mu.Unlock()
	close(stopped)
	return nil
}

// startLoop starts dv's supervised polling loop under the running Run's
// context, unless it runs already or no Run runs. p.mu is held.
func (p *Poller) startLoop(dv *device) {
	if p.runCtx == nil || dv.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(p.runCtx)
	done := make(chan struct{})
	dv.cancel, dv.done, dv.ran = cancel, done, true
	p.loopsWG.Add(1)
	go func() {
		defer p.loopsWG.Done()
		defer close(done)
		defer cancel()
		p.superviseDevice(ctx, dv)
	}()
}

// Close stops Run, waits for it to return, and is safe to call more than once
// and from any goroutine. Run cannot be called after it.
func (p *Poller) Close() error {
	p.mu.Lock()
	state, stopped, stop := p.state, p.stopped, p.stop
	p.state = 2
	p.mu.Unlock()
	if state == 1 {
		stop()
		<-stopped
	}
	return nil
}

// LastSuccess returns when device last answered a poll (the poll's start), or
// the zero time if it never did or is not polled. It is safe to call at any
// time, concurrently with Run and Update; the gateway's offline signal uses
// it.
func (p *Poller) LastSuccess(device string) time.Time {
	p.mu.Lock()
	dv, ok := p.byID[device]
	p.mu.Unlock()
	if !ok {
		return time.Time{}
	}
	if ns := dv.last.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// device is the state of one polled device, owned by its goroutine.
type device struct {
	cfg  *Device
	plan []request
	last *atomic.Int64

	sess     *session
	reused   bool // the session answered before, so a failure may mean it went stale
	backoff  time.Duration
	redialAt time.Time
	down     bool // logged as down

	pending *telemetry.Reading // newest reading the emitter refused
	lastKey *telemetry.Field   // emit_on_change value of the last reading

	loop loopState // restarts of the polling loop (supervise.go)

	// The running loop, under the Poller's mu: cancel stops it, done is
	// closed once it returned (its connection closed). Both nil when no
	// loop runs.
	cancel context.CancelFunc
	done   chan struct{}
	ran    bool // a loop was started once
}

// runDevice polls one device on a fixed cadence whose phase is random, so that
// devices with the same interval spread over it instead of polling at once.
// A poll that overruns skips the slots it missed rather than bunching up.
func (p *Poller) runDevice(ctx context.Context, dv *device) {
	defer dv.closeSession()
	iv := dv.cfg.PollInterval
	next := time.Now().Add(rand.N(iv))
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		p.m.lateness.Observe(now.Sub(next).Seconds())
		if hook := testLoopHook.Load(); hook != nil {
			(*hook)(dv.cfg.ID)
		}
		p.pollOnce(ctx, dv, now)
		next = next.Add(iv)
		if now = time.Now(); !next.After(now) {
			next = next.Add((now.Sub(next)/iv + 1) * iv)
		}
		t.Reset(next.Sub(now))
	}
}

// pollOnce reads the device once and hands the reading, or the one the
// pipeline refused last time, to the emitter.
func (p *Poller) pollOnce(ctx context.Context, dv *device, at time.Time) {
	id := dv.cfg.ID
	rd, result := p.read(ctx, dv, at)
	p.m.polls.WithLabelValues(id, result).Inc()
	if ctx.Err() != nil {
		return
	}
	if rd != nil && dv.cfg.EmitOnChange != "" {
		f, _ := rd.Get(dv.cfg.EmitOnChange)
		if dv.lastKey != nil && *dv.lastKey == f {
			rd = nil
		} else {
			dv.lastKey = &f
		}
	}
	if rd != nil {
		if dv.pending != nil {
			p.m.dropped.WithLabelValues(id).Inc()
		}
		dv.pending = rd
	}
	if dv.pending == nil {
		return
	}
	if err := p.em.Emit([]telemetry.Reading{*dv.pending}); err != nil {
		if ctx.Err() != nil {
			return
		}
		p.m.emitErrors.WithLabelValues(id).Inc()
		if !errors.Is(err, ErrBackpressure) {
			p.log.Warn("modbus: emitter refused a reading", "device", id, "err", err)
		}
		return
	}
	dv.pending = nil
}

// read performs one poll. It returns the reading (nil when nothing was read)
// and the poll's result label.
func (p *Poller) read(ctx context.Context, dv *device, at time.Time) (*telemetry.Reading, string) {
	d := dv.cfg
	if dv.sess == nil {
		if at.Before(dv.redialAt) {
			return nil, resultBackoff
		}
		if !p.dial(dv) {
			return nil, resultFailed
		}
	}
	// Cancellation closes the connection, which ends a request in flight at
	// once on TCP; on a serial line it ends within the timeout.
	stop := func() bool { return false }
	watch := func() {
		stop()
		sess := dv.sess
		stop = context.AfterFunc(ctx, func() { _ = sess.link.Close() })
	}
	watch()
	defer func() { stop() }()
	start := time.Now()
	defer func() { p.m.duration.WithLabelValues(d.ID).Observe(time.Since(start).Seconds()) }()

	rd := &telemetry.Reading{Device: d.ID, Kind: d.Kind, Time: at, Event: d.Event, Site: d.Site}
	answered, partial := false, false
	for i := range dv.plan {
		rq := &dv.plan[i]
		if ctx.Err() != nil {
			return nil, resultFailed
		}
		data, err := p.request(ctx, dv, rq)
		if err != nil && dv.reused && !answered {
			// The connection may have gone stale while idle (closed by the
			// device or a NAT); goburrow would keep failing on it (its pull
			// request 99). Try once on a fresh one before giving up the poll.
			if kind, redial := classify(err); redial && kind != KindTimeout {
				p.m.errors.WithLabelValues(d.ID, string(kind)).Inc()
				dv.closeSession()
				if !p.dial(dv) {
					return nil, resultFailed
				}
				watch()
				data, err = p.request(ctx, dv, rq)
			}
		}
		if err != nil {
			kind, redial := classify(err)
			if !redial {
				partial = true // an exception: the device is up, this block is not
				answered = true
				continue
			}
			if ctx.Err() != nil {
				return nil, resultFailed
			}
			p.fail(dv, kind, err)
			return nil, resultFailed
		}
		answered = true
		if !p.decode(d.ID, rd, rq, data) {
			partial = true
		}
	}
	if answered {
		p.answered(dv, at)
	}
	if len(rd.Fields) == 0 {
		return nil, resultFailed
	}
	if partial {
		return rd, resultPartial
	}
	return rd, resultOK
}

// decode decodes the registers of one answered request into rd. It reports
// whether every register decoded; each failure is counted.
func (p *Poller) decode(id string, rd *telemetry.Reading, rq *request, data []byte) bool {
	ok := true
	for _, r := range rq.regs {
		var derr error
		if rq.fn.Bits() {
			r.decodeBit(rd, data, int(r.Address-rq.start))
		} else {
			off := 2 * int(r.Address-rq.start)
			derr = r.decodeRegisters(rd, data[off:off+2*r.count()])
		}
		if derr != nil {
			ok = false
			p.m.errors.WithLabelValues(id, string(KindDecode)).Inc()
		}
	}
	return ok
}

// answered records that the device answered a poll at at: the connection
// is kept, the backoff reset, and a device marked down is up again.
func (p *Poller) answered(dv *device, at time.Time) {
	id := dv.cfg.ID
	dv.reused = true
	dv.backoff = 0
	dv.last.Store(at.UnixNano())
	p.m.lastSuccess.WithLabelValues(id).Set(float64(at.UnixNano()) / 1e9)
	if dv.down {
		dv.down = false
		p.log.Info("modbus: device answers again", "device", id)
	}
}

// request sends one read, retrying "server device busy" replies up to the
// device's busy_retries with a pause between them. Every failed attempt is
// counted; the caller decides about the connection.
func (p *Poller) request(ctx context.Context, dv *device, rq *request) ([]byte, error) {
	d := dv.cfg
	for attempt := 0; ; attempt++ {
		p.m.requests.WithLabelValues(d.ID).Inc()
		data, err := dv.sess.read(rq)
		if err == nil {
			return data, nil
		}
		kind, _ := classify(err)
		if kind != KindBusy || attempt >= d.BusyRetries {
			if kind == KindBusy || kind == KindException {
				p.m.errors.WithLabelValues(d.ID, string(kind)).Inc()
			}
			return nil, fmt.Errorf("device %s: %s %d+%d: %w", d.ID, rq.fn, rq.start, rq.count, err)
		}
		p.m.errors.WithLabelValues(d.ID, string(KindBusy)).Inc()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d.BusyWait):
		}
	}
}

// dial opens the device's connection, or counts the failure and backs off.
func (p *Poller) dial(dv *device) bool {
	s := newSession(dv.cfg)
	p.m.dials.WithLabelValues(dv.cfg.ID).Inc()
	if err := s.link.Connect(); err != nil {
		kind, _ := classify(err)
		p.fail(dv, kind, fmt.Errorf("device %s: connect: %w", dv.cfg.ID, err))
		return false
	}
	dv.sess, dv.reused = s, false
	return true
}

// fail counts a failure that needs a new connection, closes the current one
// and schedules the redial after an exponentially growing, jittered pause.
func (p *Poller) fail(dv *device, kind ErrorKind, err error) {
	d := dv.cfg
	p.m.errors.WithLabelValues(d.ID, string(kind)).Inc()
	dv.closeSession()
	if dv.backoff == 0 {
		dv.backoff = d.BackoffMin
	} else {
		dv.backoff = min(2*dv.backoff, d.BackoffMax)
	}
	// ±20 % so that devices behind one converter do not redial in step.
	j := time.Duration(rand.Int64N(int64(dv.backoff)/5+1)*2) - dv.backoff/5
	dv.redialAt = time.Now().Add(dv.backoff + j)
	if !dv.down {
		dv.down = true
		p.log.Warn("modbus: device not answering", "device", d.ID, "kind", string(kind), "err", err)
	}
}

func (dv *device) closeSession() {
	if dv.sess != nil {
		_ = dv.sess.link.Close()
		dv.sess = nil
	}
}
