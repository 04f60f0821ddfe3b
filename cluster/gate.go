package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sanigate/sanigate/violations"
)

// gateSink passes violations on only once live: during the rebuild of
// state, what the engine raises, resolves or withdraws was handed on by the
// partition's last owner. Live, it passes on withdrawals too (late readings
// that re-ran a device and no longer support what it raised), when the sink
// behind it takes them.
//
// Everything it hands on carries the partition's fencing token (the
// revision of the lease claim, which grows with every new owner), so that
// a sink keeping the greatest token per partition (the case store) refuses
// what an owner that lost the partition raises before it notices.
type gateSink struct {
	live  atomic.Bool
	sink  violations.Sink
	fence violations.Fence
	log   *slog.Logger
}

// fencer is a sink that can take a fencing token before anything is raised
// under it, so that a new owner turns the last one away at once.
type fencer interface {
	Fence(ctx context.Context, f violations.Fence) error
}

// open raises the sink's token to the gate's and lets violations through.
func (g *gateSink) open(ctx context.Context) {
	if f, ok := g.sink.(fencer); ok {
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			err := f.Fence(ctx, g.fence)
			if err == nil || ctx.Err() != nil {
				break
			}
			g.log.Warn("fencing token not stored yet; retrying", "scope", g.fence.Scope, "token", g.fence.Token, "error", err)
			if !sleep(ctx, wait) {
				break
			}
		}
	}
	g.live.Store(true)
}

var (
	_ violations.Withdrawer   = (*gateSink)(nil)
	_ violations.CoverageSink = (*gateSink)(nil)
)

func (g *gateSink) Raise(ctx context.Context, v violations.Violation) error {
	if !g.live.Load() {
		return nil
	}
	return g.sink.Raise(violations.WithFence(ctx, g.fence), v)
}

func (g *gateSink) Coverage(ctx context.Context, c violations.CoverageReport) error {
	cs, ok := g.sink.(violations.CoverageSink)
	if !ok || !g.live.Load() {
		return nil
	}
	return cs.Coverage(violations.WithFence(ctx, g.fence), c)
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
	return w.Withdraw(violations.WithFence(ctx, g.fence), v, reason)
}
