package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// startModbus starts polling the Modbus devices, if any. The poller runs as
// component "modbus", restarted if it fails; each device's loop redials and
// retries on its own, and one that panics is restarted by the poller and
// reported here as component "modbus/<device>" (modbusLoops). A reload
// changes the polled devices (reloadModbus), and starts the poller if none
// runs yet.
func (g *Gateway) startModbus() error {
	cfg := g.modbus.Load()
	if len(cfg.Devices) == 0 || !g.Roles.Has(RoleEdge) {
		return nil
	}
	p, err := g.newPoller(cfg)
	if err != nil {
		return err
	}
	g.runPoller(p)
	return nil
}

// newPoller builds the poller of cfg's devices; it registers its metrics,
// so a gateway builds at most one.
func (g *Gateway) newPoller(cfg *modbus.Config) (*modbus.Poller, error) {
	return modbus.NewPoller(cfg, tapEmitter{g.pipeline}, modbus.Options{Registerer: g.reg,
		Logger: g.log.With("component", "modbus"), Loops: modbusLoops{s: g.sup}})
}

// runPoller runs p as the supervised component "modbus".
func (g *Gateway) runPoller(p *modbus.Poller) {
	loops := modbusLoops{s: g.sup}
	g.poller.Store(p)
	g.sup.start(component{name: "modbus", run: func(ctx context.Context) error {
		// Once Run returns no device loop runs: none is down on its own.
		defer func() { loops.forget(g.modbus.Load().Devices) }()
		return p.Run(ctx)
	}})
}

// reloadModbus prepares a reload's modbus section, which fleet.Load decoded
// and checked as at start (register maps, and each polled device
// registered under devices: with its kind and transport: modbus), so a
// broken section has already refused the reload. before runs before the new
// devices are installed: it stops the loops of devices no longer polled,
// while they are still registered, so that their last readings are not
// refused as unknown. after runs once they are installed: it polls the new
// and changed devices (the poller restarts only those) and starts a poller
// if none ran, the gateway takes device input and is not closing. Devices
// whose polling is unchanged keep their connections. reloadMu is held.
func (g *Gateway) reloadModbus(next *modbus.Config) (before func(), after func() fleet.Change, err error) {
	log := g.log.With("component", "modbus")
	p := g.poller.Load()
	if p == nil {
		if len(next.Devices) == 0 || !g.Roles.Has(RoleEdge) || g.sup == nil || g.closing {
			return func() {}, func() fleet.Change { g.modbus.Store(next); return fleet.Change{} }, nil
		}
		if p, err = g.newPoller(next); err != nil {
			return nil, nil, fmt.Errorf("modbus: %w", err)
		}
		return func() {}, func() fleet.Change {
			g.modbus.Store(next)
			g.runPoller(p)
			ids := make([]string, len(next.Devices))
			for i, d := range next.Devices {
				ids[i] = d.ID
			}
			log.Info("modbus polling started by a reload", "added", ids)
			return fleet.Change{Added: ids}
		}, nil
	}
	var removed []string
	before = func() {
		// The devices in force, less those that leave; the others poll on
		// untouched until after.
		stay := &modbus.Config{}
		for _, d := range g.modbus.Load().Devices {
			if slices.ContainsFunc(next.Devices, func(n modbus.Device) bool { return n.ID == d.ID }) {
				stay.Devices = append(stay.Devices, d)
			}
		}
		_, removed, _ = p.Update(stay)
		for _, id := range removed {
			g.sup.forget(loopComponent(id))
		}
	}
	after = func() fleet.Change {
		added, _, changed := p.Update(next)
		g.modbus.Store(next)
		ch := fleet.Change{Added: added, Removed: removed, Changed: changed}
		if !ch.Empty() {
			log.Info("modbus devices reloaded", "added", added, "removed", removed, "changed", changed)
		}
		return ch
	}
	return before, after, nil
}

// modbusLoops counts the restarts of Modbus device loops with the other
// components' restarts and reports a device whose loop waits to restart as
// down in /readyz.
type modbusLoops struct{ s *supervisor }

func loopComponent(device string) string { return "modbus/" + device }

// LoopFailed counts the restart and marks the device's loop down.
func (l modbusLoops) LoopFailed(device, reason string, err error, retry time.Duration) {
	msg, _, _ := strings.Cut(err.Error(), "\n") // the first line, without the stack
	l.s.restarts.WithLabelValues(loopComponent(device), reason).Inc()
	l.s.setDown(loopComponent(device), fmt.Sprintf("%s (restarting in %s)", msg, retry.Round(time.Millisecond)))
}

// LoopRunning marks the device's loop up.
func (l modbusLoops) LoopRunning(device string) { l.s.setDown(loopComponent(device), "") }

func (l modbusLoops) forget(devices []modbus.Device) {
	for _, d := range devices {
		l.s.setDown(loopComponent(d.ID), "")
	}
}

// emitTap, set only by this package's tests, sees each batch of polled
// readings before the pipeline, on the device's goroutine: a test injects a
// fault into one device's loop with it.
var emitTap atomic.Pointer[func([]telemetry.Reading)]

// tapEmitter hands polled readings to the pipeline, through emitTap if set.
type tapEmitter struct{ next modbus.Emitter }

func (t tapEmitter) Emit(rs []telemetry.Reading) error {
	if f := emitTap.Load(); f != nil {
		(*f)(rs)
	}
	return t.next.Emit(rs)
}

// polledRecently reports whether a Modbus device answered within three poll
// intervals. It runs on the API's goroutines, concurrently with reloads.
func (g *Gateway) polledRecently(id string) bool {
	p := g.poller.Load()
	if p == nil {
		return false
	}
	last := p.LastSuccess(id)
	if last.IsZero() {
		return false
	}
	for _, d := range g.modbus.Load().Devices {
		if d.ID == id {
			return time.Since(last) < 3*d.PollInterval
		}
	}
	return false
}
