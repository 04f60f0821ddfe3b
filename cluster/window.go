package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// window is the forwarder's queue of records in flight, in spool order, and
// the cursor they move: acked is the end of the acknowledged prefix,
// committed what was last persisted. Only the forwarding goroutine uses it.
type window struct {
	f          *Forwarder
	q          []inflight
	acked      int64
	committed  int64
	lastCommit time.Time
}

// errAckTimeout is a publish that was not acknowledged in time.
var errAckTimeout = errors.New("no acknowledgement in time")

// settle pops the records at the head of the queue that are done. With
// block it first waits (up to the ack timeout) for the head to be
// acknowledged when it is not yet. A failed head is returned as an error.
func (w *window) settle(block bool) error {
	for len(w.q) > 0 {
		h := &w.q[0]
		if h.ok == nil {
			w.pop()
			continue
		}
		select {
		case ack := <-h.ok:
			w.done(ack)
			continue
		case err := <-h.err:
			return fmt.Errorf("record ending at %d: %w", h.end, err)
		default:
		}
		if !block {
			return nil
		}
		if err := w.await(h); err != nil {
			return err
		}
		block = false
	}
	return nil
}

// await waits for the head's acknowledgement.
func (w *window) await(h *inflight) error {
	t := time.NewTimer(max(w.f.o.AckTimeout-time.Since(h.sent), time.Millisecond))
	defer t.Stop()
	select {
	case ack := <-h.ok:
		w.done(ack)
		return nil
	case err := <-h.err:
		return fmt.Errorf("record ending at %d: %w", h.end, err)
	case <-t.C:
		return fmt.Errorf("record ending at %d: %w", h.end, errAckTimeout)
	}
}

// done counts the acknowledged head and pops it.
func (w *window) done(ack *jetstream.PubAck) {
	h := w.q[0]
	now := time.Now()
	if ack != nil && ack.Duplicate {
		w.f.m.duplicates.Inc()
	}
	w.f.m.forwarded.Inc()
	w.f.m.ackLatency.Observe(now.Sub(h.sent).Seconds())
	w.f.m.delay.Observe(now.Sub(h.appended).Seconds())
	w.pop()
}

func (w *window) pop() {
	w.acked = w.q[0].end
	w.q[0] = inflight{}
	w.q = w.q[1:]
}

// maybeCommit persists the acknowledged prefix when it moved and the commit
// interval passed, when nothing is in flight, or when forced.
func (w *window) maybeCommit(force bool) {
	if w.acked <= w.committed {
		return
	}
	if !force && len(w.q) > 0 && time.Since(w.lastCommit) < w.f.o.CommitInterval {
		return
	}
	if err := w.f.cons.Commit(w.acked); err != nil {
		// The cursor moved in memory; on disk it lags, so a restart sends
		// more again, which JetStream drops by message id.
		w.f.log.Warn("cursor not persisted", "error", err)
	}
	w.committed = w.acked
	w.lastCommit = time.Now()
}

// drain waits for what is in flight (each up to the ack timeout) and commits.
func (w *window) drain() {
	for len(w.q) > 0 {
		if err := w.settle(true); err != nil {
			break
		}
	}
	w.maybeCommit(true)
}

// backoff waits between failed attempts: 100ms doubling to 2s, with jitter
// (short, so that the end of a NATS leader election is noticed soon).
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) reset() { b.d = 0 }

// wait sleeps for the next delay; false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	switch {
	case b.d == 0:
		b.d = 100 * time.Millisecond
	case b.d < 2*time.Second:
		b.d = min(2*b.d, 2*time.Second)
	}
	return sleep(ctx, b.d/2+rand.N(b.d/2+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
