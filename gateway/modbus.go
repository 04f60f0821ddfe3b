package gateway

import (
	"context"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
)

// startModbus starts polling the Modbus devices, if any. Each device's loop
// redials and retries on its own; the supervisor restarts the poller if it
// stops.
func (g *Gateway) startModbus() error {
	if len(g.modbus.Devices) == 0 || !g.Roles.Has(RoleEdge) {
		return nil
	}
	p, err := modbus.NewPoller(g.modbus, g.pipeline, modbus.Options{Registerer: g.reg, Logger: g.log.With("component", "modbus")})
	if err != nil {
		return err
	}
	g.poller = p
	g.sup.start(component{name: "modbus", run: func(ctx context.Context) error {
		if err := p.Run(ctx); err != nil {
			return err
		}
		return nil
	}})
	return nil
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
