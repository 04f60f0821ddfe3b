package modbus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// LoopWatcher is told about the polling loops of devices, so that the
// gateway counts their restarts with its other components' and reports a
// device whose loop is down. Its methods are called from the device's
// goroutine, concurrently for different devices; they must not block.
type LoopWatcher interface {
	// LoopFailed reports that device's loop failed (reason "panic") and
	// runs again after retry.
	LoopFailed(device, reason string, err error, retry time.Duration)
	// LoopRunning reports that device's loop runs (again).
	LoopRunning(device string)
}

// ErrLoopPanic marks the error of a device loop that panicked.
var ErrLoopPanic = errors.New("modbus: device loop panicked")

// loopHealthy is how long a device loop must run for its restart backoff to
// start from the device's BackoffMin again.
const loopHealthy = time.Minute

// loopLogEvery bounds the log of a device loop that keeps failing: one
// error line a minute, with the count of the failures not logged.
const loopLogEvery = time.Minute

// loopState is the restart bookkeeping of one device loop, owned by the
// device's goroutine.
type loopState struct {
	wait       time.Duration // pause before the next restart
	loggedAt   time.Time     // last failure logged
	unreported int           // failures since then not logged
}

// testLoopHook, when set (by the package's own tests only), runs at the top
// of each poll of a device, so a test can make one device's loop fail.
var testLoopHook atomic.Pointer[func(device string)]

// superviseDevice runs dv's polling loop until ctx ends. A loop that panics
// (in decoding, in the emitter, anywhere in a poll) is recovered, counted,
// logged at a bounded rate and restarted after a backoff that doubles from
// the device's BackoffMin to its BackoffMax; other devices poll on.
func (p *Poller) superviseDevice(ctx context.Context, dv *device) {
	id := dv.cfg.ID
	for {
		if p.loops != nil {
			p.loops.LoopRunning(id)
		}
		began := time.Now()
		err := p.runDeviceOnce(ctx, dv)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("modbus: device loop returned before it was stopped")
		}
		reason := "error"
		if errors.Is(err, ErrLoopPanic) {
			reason = "panic"
		}
		l := &dv.loop
		if l.wait == 0 || time.Since(began) > loopHealthy {
			l.wait = dv.cfg.BackoffMin
		} else {
			l.wait = min(2*l.wait, dv.cfg.BackoffMax)
		}
		if dv.pending != nil {
			// The reading in hand may be what made the loop fail: it is not
			// offered again.
			dv.pending = nil
			p.m.dropped.WithLabelValues(id).Inc()
		}
		p.m.loopRestarts.WithLabelValues(id, reason).Inc()
		p.logLoopFailure(dv, reason, err)
		if p.loops != nil {
			p.loops.LoopFailed(id, reason, err, l.wait)
		}
		t := time.NewTimer(l.wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// runDeviceOnce runs the device loop, turning a panic into an error that
// wraps ErrLoopPanic and carries the stack.
func (p *Poller) runDeviceOnce(ctx context.Context, dv *device) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrLoopPanic, r, debug.Stack())
		}
	}()
	p.runDevice(ctx, dv)
	return nil
}

// logLoopFailure logs a loop failure at most once per loopLogEvery per
// device, saying how many were not logged since.
func (p *Poller) logLoopFailure(dv *device, reason string, err error) {
	l := &dv.loop
	now := time.Now()
	if !l.loggedAt.IsZero() && now.Sub(l.loggedAt) < loopLogEvery {
		l.unreported++
		return
	}
	p.log.Error("modbus: device loop failed; restarting", "device", dv.cfg.ID, "reason", reason,
		"err", err, "in", l.wait, "not_logged", l.unreported)
	l.loggedAt, l.unreported = now, 0
}
