package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// partitionWorker runs detection on one owned partition.
type partitionWorker struct {
	d     *Detector
	js    jetstream.JetStream
	state *progress
	p     int
	fence violations.Fence // the lease's fencing token
	snaps *snapshots
	scope string       // the snapshots' scope: stream, partition, stream's creation
	clean *atomic.Bool // set when the partition is handed back, not lost
	log   *slog.Logger
}

func (w *partitionWorker) run(ctx context.Context) error {
	o := w.d.o
	subject := Subject(o.Stream.SubjectPrefix, w.p)
	gate := &gateSink{sink: o.Sink, log: w.log, fence: w.fence}
	eng := o.Engine(w.p, gate)
	var (
		stream   jetstream.Stream
		cons     jetstream.Consumer
		floor    uint64
		snapSeq  uint64
		restored bool
		tried    bool
		err      error
	)
	for {
		if stream, err = w.js.Stream(ctx, o.Stream.Name); err == nil {
			if !tried {
				tried = true
				// Sequences start again in a stream made anew: a
				// snapshot names the stream's creation.
				w.scope = fmt.Sprintf("%s/%d@%d", o.Stream.Name, w.p, stream.CachedInfo().Created.UnixNano())
				snapSeq, restored = w.restore(ctx, eng)
			}
			cons, floor, err = w.consumer(ctx, stream, subject, snapSeq)
		}
		if err == nil {
			break
		}
		w.log.Warn("partition consumer not ready", "error", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	switch {
	case restored && snapSeq < floor:
		n, err := w.rebuild(ctx, stream, subject, floor, eng, snapSeq+1)
		if err != nil {
			return err
		}
		w.d.snapm.rebuilt.Add(float64(n))
		w.log.Info("detector state restored from the snapshot and the stream after it", "snapshot_seq", snapSeq, "messages", n, "up_to", floor)
	case restored:
		w.log.Info("detector state restored from the snapshot", "snapshot_seq", snapSeq, "up_to", floor)
	case floor > 0:
		n, err := w.rebuild(ctx, stream, subject, floor, eng, 0)
		if err != nil {
			return err
		}
		w.d.snapm.rebuilt.Add(float64(n))
		w.log.Info("detector state rebuilt", "messages", n, "up_to", floor)
	}
	gate.open(ctx)
	return w.live(ctx, cons, eng, floor)
}

// restore loads the partition's snapshot into eng and returns the stream
// sequence it reflects; false when there is none or it cannot be read (the
// time-based replay rebuilds the state then).
func (w *partitionWorker) restore(ctx context.Context, eng *violations.Engine) (uint64, bool) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := w.snaps.load(lctx, w.p)
	if errors.Is(err, errNoSnapshot) {
		w.d.snapm.restores.WithLabelValues("absent").Inc()
		w.log.Info("no snapshot of the partition: state rebuilt from the last replay of the stream")
		return 0, false
	}
	var at int64
	var devices int
	if err == nil {
		at, devices, err = eng.Restore(w.scope, b)
	}
	if err != nil {
		w.d.snapm.restores.WithLabelValues("unreadable").Inc()
		w.log.Warn("partition snapshot unreadable: state rebuilt from the last replay of the stream instead", "error", err)
		return 0, false
	}
	w.d.snapm.restores.WithLabelValues("restored").Inc()
	w.log.Info("partition snapshot loaded", "seq", at, "devices", devices, "bytes", len(b))
	return uint64(at), true
}

// saveSnapshot stores eng's state as reflecting the stream up to seq.
func (w *partitionWorker) saveSnapshot(ctx context.Context, eng *violations.Engine, seq uint64) bool {
	b, err := eng.Snapshot(w.scope, int64(seq))
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = w.snaps.save(sctx, w.p, b, seq)
		cancel()
	}
	if err != nil {
		w.log.Warn("partition snapshot not saved", "seq", seq, "error", err)
		return false
	}
	w.d.snapm.saved.Inc()
	w.log.Debug("partition snapshot saved", "seq", seq, "bytes", len(b))
	return true
}

// consumer replaces the partition's durable consumer by one that starts
// right after what the last owner acknowledged (or after the snapshot's
// sequence, when that is further), so nothing it had in flight waits for a
// redelivery; it returns that point too (0: from the start).
func (w *partitionWorker) consumer(ctx context.Context, stream jetstream.Stream, subject string, snapSeq uint64) (jetstream.Consumer, uint64, error) {
	name := "detect-" + strconv.Itoa(w.p)
	floor, err := w.state.floor(ctx, w.p)
	if err != nil {
		return nil, 0, fmt.Errorf("floor of partition %d: %w", w.p, err)
	}
	if c, err := stream.Consumer(ctx, name); err == nil {
		info, err := c.Info(ctx)
		if err != nil {
			return nil, 0, err
		}
		floor = max(floor, info.AckFloor.Stream)
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, 0, err
	}
	// What the snapshot reflects was handed on: a snapshot is saved only
	// once the engine returned from the readings.
	floor = max(floor, snapSeq)
	if err := w.state.setFloor(ctx, w.p, floor); err != nil {
		return nil, 0, fmt.Errorf("floor of partition %d: %w", w.p, err)
	}
	if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, 0, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable: name, FilterSubject: subject, AckPolicy: jetstream.AckAllPolicy,
		AckWait: 30 * time.Second, MaxAckPending: 20000, DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if floor > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, 0, err
	}
	return cons, floor, nil
}

// rebuild feeds the engine the partition's readings up to the message at
// floor, with the gate closed: from the sequence fromSeq (after a
// snapshot), or else from Replay before the message at floor.
func (w *partitionWorker) rebuild(ctx context.Context, stream jetstream.Stream, subject string, floor uint64, eng *violations.Engine, fromSeq uint64) (int, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{subject},
		InactiveThreshold: 5 * time.Second, // the server drops it soon after the rebuild
	}
	if fromSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, fromSeq
	} else {
		from := time.Now().Add(-w.d.o.Replay)
		if m, err := stream.GetMsg(ctx, floor); err == nil {
			from = m.Time.Add(-w.d.o.Replay)
		}
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	oc, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	n, empty := 0, 0
	for {
		batch, err := oc.Fetch(fetchBatch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return n, fmt.Errorf("rebuild: %w", err)
		}
		var rs []telemetry.Reading
		done, got := false, 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream > floor {
				done = true
				break
			}
			if rs, err = w.take(ctx, eng, rs, m); err != nil {
				return n, err
			}
			n++
			done = done || md.Sequence.Stream == floor || md.NumPending == 0
			if done {
				// The floor is reached: what the fetch still brings is
				// for the live consumer, and this one is dropped.
				break
			}
		}
		if err := eng.ProcessReadings(ctx, rs); err != nil {
			return n, err
		}
		if done || ctx.Err() != nil {
			return n, ctx.Err()
		}
		if got > 0 {
			empty = 0
			continue
		}
		// An empty fetch is no proof that the floor was read: a busy
		// server may answer after the wait. Only the consumer's own count
		// of what is left ends the rebuild early.
		if empty++; w.nothingLeft(ctx, oc) {
			return n, nil
		}
		if empty >= rebuildPatience {
			w.log.Warn("rebuild ended before the acknowledged point: the stream sent nothing more", "messages", n, "up_to", floor)
			return n, nil
		}
	}
}

// rebuildPatience is how many empty fetches in a row (of a second each) a
// rebuild waits for the rest of the partition before it gives up.
const rebuildPatience = 15

// nothingLeft reports whether the rebuild consumer has delivered all it
// holds.
func (w *partitionWorker) nothingLeft(ctx context.Context, oc jetstream.Consumer) bool {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := oc.Info(ictx)
	return err == nil && info.NumPending == 0
}

// live consumes the partition, acknowledging each batch once the engine has
// handed on what it raised. Each device is judged in its own event time as
// its readings arrive; the clock rules of silent devices fire from the
// clock, which moves every device to the wall clock less Lateness whenever
// the partition is idle (a fetch brought nothing).
//
// It saves a snapshot of the engine every SnapshotEvery, and when the
// partition is handed back cleanly (w.clean set before ctx ends).
func (w *partitionWorker) live(ctx context.Context, cons jetstream.Consumer, eng *violations.Engine, floor uint64) error {
	done, saved, savedAt := floor, floor, time.Now()
	snapshot := func() {
		if done > saved && time.Since(savedAt) >= w.d.o.SnapshotEvery && w.saveSnapshot(ctx, eng, done) {
			saved, savedAt = done, time.Now()
		}
	}
	defer func() {
		if w.clean != nil && w.clean.Load() && done > saved {
			// Handed back: the next owner starts from here.
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			w.saveSnapshot(sctx, eng, done)
			cancel()
		}
	}()
	idle := false
	for ctx.Err() == nil {
		// What is there now, at once; when nothing was, wait up to a
		// second for the next message, and take it as soon as it comes (a
		// fetch of many waits for all of them or the whole second, which
		// a quiet partition's readings would wait too).
		var (
			batch jetstream.MessageBatch
			err   error
		)
		if idle {
			batch, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		} else {
			batch, err = cons.FetchNoWait(fetchBatch)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("fetch failed", "error", err)
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		var rs []telemetry.Reading
		var last jetstream.Msg
		for m := range batch.Messages() {
			if rs, err = w.take(ctx, eng, rs, m); err != nil {
				return err
			}
			last = m
		}
		wasIdle := idle
		idle = last == nil
		if last == nil && !wasIdle {
			continue // nothing at once: wait for the next message
		}
		if last == nil {
			if err := eng.AdvanceTo(ctx, w.d.o.Now().Add(-w.d.o.Lateness)); err != nil && ctx.Err() == nil {
				return err
			}
			snapshot()
			continue
		}
		if err := eng.ProcessReadings(ctx, rs); err != nil {
			return err
		}
		w.d.readings.Add(float64(len(rs)))
		if err := last.Ack(); err != nil {
			w.log.Warn("ack failed; the batch will be read again by the next owner", "error", err)
		}
		if md, err := last.Metadata(); err == nil {
			done = md.Sequence.Stream
		}
		snapshot()
	}
	return nil
}

// fetchBatch is the most messages one fetch asks for.
const fetchBatch = 512

// take adds m's readings to rs; for a last will it first processes rs, so
// that the will comes after them, and hands the will to the engine.
func (w *partitionWorker) take(ctx context.Context, eng *violations.Engine, rs []telemetry.Reading, m jetstream.Msg) ([]telemetry.Reading, error) {
	dev := m.Headers().Get(OfflineHeader)
	if dev == "" {
		return append(rs, w.readings(m)...), nil
	}
	if err := eng.ProcessReadings(ctx, rs); err != nil {
		return nil, err
	}
	ns, _ := strconv.ParseInt(m.Headers().Get(AppendedHeader), 10, 64)
	eng.Offline(dev, time.Unix(0, ns))
	return nil, nil
}

func (w *partitionWorker) readings(m jetstream.Msg) []telemetry.Reading {
	rs, err := telemetry.ParseLines(m.Data())
	if err != nil {
		w.log.Warn("unreadable reading in the stream", "subject", m.Subject(), "error", err)
	}
	return rs
}
