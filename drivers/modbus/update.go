package modbus

import (
	"reflect"

	"github.com/prometheus/client_golang/prometheus"
)

// Update makes cfg the set of polled devices, as a configuration reload
// does, and returns the ids of the devices it added, removed and changed, in
// cfg's order (removed in the old order). A device whose configuration is
// unchanged (its position in the file aside) keeps its loop, its connection
// and its last success. A removed device's loop is stopped and its
// connection closed before Update returns; its metric series are deleted.
// A changed device's loop is stopped, then started again with the new
// configuration on a new connection; it keeps its last success (the offline
// signal is about the device, not its register map), the reading the
// pipeline last refused, if any, and the value its emit_on_change field
// last had when that field stays the same. Added devices start polling at once when
// Run runs; otherwise the next Run polls the new set. Device ids must be
// unique, as ParseConfig makes them; a repeated id is ignored.
//
// Update is safe to call from any goroutine, concurrently with Run, Close
// and LastSuccess; Updates run one at a time. It blocks while a stopped
// loop finishes its poll in flight (at most one request timeout, or an
// Emit that blocks).
func (p *Poller) Update(cfg *Config) (added, removed, changed []string) {
	p.upd.Lock()
	defer p.upd.Unlock()
	u := p.swap(cfg)
	// Outside the lock, so that LastSuccess answers meanwhile. A loop ends
	// by closing its connection (runDevice), which also ends a request in
	// flight on TCP at once.
	for _, done := range u.waits {
		<-done
	}
	for _, id := range u.removed {
		// The loop is gone, so nothing creates these series again.
		p.m.forget(id)
		p.log.Info("modbus: device no longer polled", "device", id)
	}
	for _, r := range u.starting {
		p.m.device(r.new.cfg.ID)
	}
	p.mu.Lock()
	for _, r := range u.starting {
		// A Run that started since the swap started this loop itself, and
		// its goroutine owns the device's state.
		if r.new.ran {
			continue
		}
		if r.old != nil {
			r.new.pending = r.old.pending
			// The same emit_on_change field: the value last emitted stays
			// the reference, so a weighbridge whose site changed does not
			// emit its last weighing again.
			if r.old.cfg.EmitOnChange == r.new.cfg.EmitOnChange {
				r.new.lastKey = r.old.lastKey
			}
		}
		p.startLoop(r.new)
	}
	p.mu.Unlock()
	return u.added, u.removed, u.changed
}

// deviceSwap is what Update does once the new device set is in place: the
// loops it stopped (waits) and the loops it starts, and the ids it names.
type deviceSwap struct {
	starting                []restart // added (old nil) and changed devices
	waits                   []chan struct{}
	added, removed, changed []string
}

// restart is a device whose loop starts anew, with the one it replaces.
type restart struct{ old, new *device }

// swap puts cfg's devices in place of the poller's, keeping the devices
// whose configuration is unchanged, and stops the loops of the removed
// and changed ones, under the poller's lock.
func (p *Poller) swap(cfg *Config) deviceSwap {
	var u deviceSwap
	var stopping []*device
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make([]*device, 0, len(cfg.Devices))
	byID := make(map[string]*device, len(cfg.Devices))
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		if _, dup := byID[d.ID]; dup {
			p.log.Warn("modbus: device listed twice; the first entry is polled", "device", d.ID)
			continue
		}
		old, ok := p.byID[d.ID]
		var dv *device
		switch {
		case ok && sameDevice(old.cfg, d):
			dv = old
		case ok:
			dv = newDevice(d)
			dv.last = old.last
			stopping = append(stopping, old)
			u.starting = append(u.starting, restart{old, dv})
			u.changed = append(u.changed, d.ID)
		default:
			dv = newDevice(d)
			u.starting = append(u.starting, restart{nil, dv})
			u.added = append(u.added, d.ID)
		}
		next = append(next, dv)
		byID[d.ID] = dv
	}
	for _, old := range p.devices {
		if _, ok := byID[old.cfg.ID]; !ok {
			stopping = append(stopping, old)
			u.removed = append(u.removed, old.cfg.ID)
		}
	}
	p.devices, p.byID = next, byID
	for _, dv := range stopping {
		if dv.cancel != nil {
			dv.cancel()
			u.waits = append(u.waits, dv.done)
		}
	}
	return u
}

// sameDevice reports whether a and b poll the same way: every setting and
// register equal, where in the file they were written aside.
func sameDevice(a, b *Device) bool {
	return reflect.DeepEqual(withoutPlace(a), withoutPlace(b))
}

func withoutPlace(d *Device) Device {
	c := *d
	c.Line = 0
	c.Registers = make([]Register, len(d.Registers))
	for i, r := range d.Registers {
		r.File, r.Line, r.path = "", 0, ""
		c.Registers[i] = r
	}
	return c
}

// forget deletes the series of a device that is no longer polled, so that
// dashboards and alerts do not keep a stale last success or error count.
func (m *metrics) forget(id string) {
	l := prometheus.Labels{"device": id}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.duration, m.errors, m.lastSuccess, m.requests, m.dials, m.polls, m.dropped, m.emitErrors, m.loopRestarts,
	} {
		v.DeletePartialMatch(l)
	}
}
