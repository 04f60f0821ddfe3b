package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/telemetry"
)

// startModbus starts polling the Modbus devices, if any. The poller runs as
// component "modbus", restarted if it fails; each device's loop redials and
// retries on its own, and one that panics is restarted by the poller and
// reported here as component "modbus/<device>" (modbusLoops).
func (g *Gateway) startModbus() error {
	if len(g.modbus.Devices) == 0 || !g.Roles.Has(RoleEdge) {
		return nil
	}
	loops := modbusLoops{s: g.sup}
	p, err := modbus.NewPoller(g.modbus, tapEmitter{g.pipeline}, modbus.Options{Registerer: g.reg,
		Logger: g.log.With("component", "modbus"), Loops: loops})
	if err != nil {
		return err
	}
	g.poller = p
	g.sup.start(component{name: "modbus", run: func(ctx context.Context) error {
		// Once Run returns no device loop runs: none is down on its own.
		defer loops.forget(g.modbus.Devices)
		return p.Run(ctx)
	}})
	return nil
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

// polledRecently reports whether a Modbus device answered within three poll intervals.
func (g *Gateway) polledRecently(id string) bool {
	if g.poller == nil {
		return false
	}
	last := g.poller.LastSuccess(id)
	if last.IsZero() {
		return false
	}
	for _, d := range g.modbus.Devices {
		if d.ID == id {
			return time.Since(last) < 3*d.PollInterval
		}
	}
	return false
}
