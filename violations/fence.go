package violations

import (
	"context"
	"errors"
)

// Fence is a fencing token: the right of one detector to raise for a scope
// (in cluster mode, a stream partition), numbered so that every later
// holder's token is greater. A sink that keeps the greatest token it has
// seen per scope refuses what comes with a smaller one: a detector that
// lost its lease while paused or cut off, and goes on raising before it
// notices, is turned away once the new holder has raised.
type Fence struct {
	Scope string
	Token uint64
}

// ErrFenced is returned by a sink refusing a violation raised under a
// fencing token older than one it has seen for the scope.
var ErrFenced = errors.New("violations: raised under a stale fencing token")

type fenceKey struct{}

// WithFence returns ctx carrying f, for the sink the violation is raised
// into: the context is the one thing that travels from a detector to the
// store through every sink in between.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom is the fence ctx carries, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}
