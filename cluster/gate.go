package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/sanigate/sanigate/violations"
)

// gateSink passes violations on only once live: during the rebuild of
// state, what the engine raises, resolves or withdraws was handed on by the
// partition's last owner. Live, it passes on withdrawals too (late readings
// that re-ran a device and no longer support what it raised), when the sink
// behind it takes them.
type gateSink struct {
	live atomic.Bool
	sink violations.Sink
	log  *slog.Logger
}

var (
	_ violations.Withdrawer   = (*gateSink)(nil)
	_ violations.CoverageSink = (*gateSink)(nil)
)

func (g *gateSink) Raise(ctx context.Context, v violations.Violation) error {
	if !g.live.Load() {
		return nil
	}
	return g.sink.Raise(ctx, v)
}

func (g *gateSink) Coverage(ctx context.Context, c violations.CoverageReport) error {
	cs, ok := g.sink.(violations.CoverageSink)
	if !ok || !g.live.Load() {
		return nil
	}
	return cs.Coverage(ctx, c)
}

// Withdraw hands a withdrawal on; a sink that cannot take it back keeps
// the violation, with a warning.
func (g *gateSink) Withdraw(ctx context.Context, v violations.Violation, reason string) error {
	if !g.live.Load() {
		return nil
	}
	w, ok := g.sink.(violations.Withdrawer)
	if !ok {
		g.log.Warn("late readings no longer support a violation; the sink cannot withdraw it",
			"device", v.Device, "type", v.Type, "key", v.Key)
		return nil
	}
	return w.Withdraw(ctx, v, reason)
}
