package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/violations"
)

// EngineFactory builds the detection engine of one partition, raising into
// sink. Each owned partition has its own engine, dropped when the partition
// is given up.
type EngineFactory func(partition int, sink violations.Sink) *violations.Engine

// DetectorOptions configure a Detector.
type DetectorOptions struct {
	// URLs are the NATS servers to connect to.
	URLs []string
	// Stream is the stream the forwarders fill (its name, prefix, partitions).
	Stream StreamOptions
	// ID names this detector among the others (default: a random id).
	ID string
	// LeaseBucket and LeaseTTL: see leases (defaults SANIGATE_OWNERS, 10s).
	// A dead detector's partitions are taken over after about one TTL.
	LeaseBucket string
	LeaseTTL    time.Duration
	// StateBucket holds each partition's progress (default
	// SANIGATE_PARTITIONS).
	StateBucket string
	// SnapshotBucket is the object store of the partitions' snapshots
	// (default SANIGATE_SNAPSHOTS); SnapshotEvery how often an owner saves
	// one while it works (default 1m). It saves one too when it hands a
	// partition back; a new owner restores it and reads again only what
	// came after it, falling back to Replay when there is none.
	SnapshotBucket string
	SnapshotEvery  time.Duration
	// Replay is how much of a partition, before the point its last owner
	// had processed, a new owner without a usable snapshot reads again to
	// rebuild detector state, raising nothing (default 1h). Evidence older
	// than that is not seen then.
	Replay time.Duration
	// Lateness is how far behind the wall clock a partition's devices are
	// ticked while it is idle: the clock rules (offline, route windows)
	// fire that late, and a reading older than that re-runs its device.
	// Each device's own readings move its event time as they arrive.
	Lateness time.Duration
	// Now is the wall clock (default time.Now).
	Now func() time.Time
	// Engine builds a partition's engine (required).
	Engine EngineFactory
	// Sink receives the violations (required).
	Sink violations.Sink
	// Registerer receives the detector's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Detector runs detection on the partitions of the stream it holds a lease
// on, one engine per partition. A partition is read through a durable
// consumer ("detect-<p>") that the owner acknowledges once the engine has
// handed what the readings raised to the sink, so a new owner continues
// where the last one stopped; before that it rebuilds detector state,
// raising nothing, from the partition's last snapshot and the messages after
// it, or, without a usable snapshot, from the last Replay of the partition.
// What it raises carries the lease's fencing token (see gateSink).
type Detector struct {
	o   DetectorOptions
	log *slog.Logger

	readings prometheus.Counter
	taken    prometheus.Counter
	snapm    *snapshotMetrics

	mu    sync.Mutex
	owned map[int]*running
}

// running is the work on one partition.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	clean  atomic.Bool // handed back rather than lost: save a snapshot
}

// NewDetector checks o and returns a detector.
func NewDetector(o DetectorOptions) (*Detector, error) {
	if len(o.URLs) == 0 || o.Engine == nil || o.Sink == nil {
		return nil, errors.New("cluster: a detector needs NATS URLs, an engine factory and a sink")
	}
	o.Stream.defaults()
	if o.ID == "" {
		o.ID = nats.NewInbox()[len("_INBOX."):]
	}
	if o.LeaseBucket == "" {
		o.LeaseBucket = DefaultLeaseBucket
	}
	if o.SnapshotBucket == "" {
		o.SnapshotBucket = DefaultSnapshotBucket
	}
	if o.SnapshotEvery <= 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.StateBucket == "" {
		o.StateBucket = DefaultStateBucket
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Replay <= 0 {
		o.Replay = time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Detector{o: o, log: o.Logger.With("detector", o.ID), owned: map[int]*running{}, snapm: newSnapshotMetrics(),
		readings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_cluster_detect_readings_total", Help: "Readings the partition detectors processed live (rebuilds left out).",
		}),
		taken: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sanigate_cluster_partitions_taken_total", Help: "Partitions this detector took a lease on (at start or over from another).",
		}),
	}
	if o.Registerer != nil {
		owned := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sanigate_cluster_partitions_owned", Help: "Partitions this detector holds a lease on.",
		}, func() float64 { return float64(len(d.Owned())) })
		for _, c := range append([]prometheus.Collector{d.readings, d.taken, owned}, d.snapm.collectors()...) {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cluster: register metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Owned lists the partitions this detector works on now.
func (d *Detector) Owned() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ps []int
	for p := range d.owned {
		ps = append(ps, p)
	}
	return ps
}

// Run holds leases and works on the owned partitions until ctx ends; then it
// stops every partition and gives its leases back.
func (d *Detector) Run(ctx context.Context) error {
	nc, err := nats.Connect(strings.Join(d.o.URLs, ","), nats.Name("sanigate-detect-"+d.o.ID),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return fmt.Errorf("cluster: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var (
		ls    *leases
		state *progress
		snaps *snapshots
	)
	for {
		// The stream too, in case no forwarder has made it yet.
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err = EnsureStream(octx, js, d.o.Stream); err == nil {
			ls, err = openLeases(octx, js, d.o.LeaseBucket, d.o.ID, d.o.LeaseTTL, d.o.Stream.Replicas, d.o.Stream.Partitions)
		}
		if err == nil {
			state, err = openProgress(octx, js, d.o.StateBucket, d.o.Stream.Replicas)
		}
		if err == nil {
			snaps, err = openSnapshots(octx, js, d.o.SnapshotBucket, d.o.Stream.Replicas)
		}
		cancel()
		if err == nil {
			break
		}
		d.log.Warn("stream or lease bucket not ready", "error", err)
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
	defer func() {
		d.stopAll()
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ls.release(rctx)
		cancel()
	}()
	t := time.NewTicker(d.o.LeaseTTL / 4)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, d.o.LeaseTTL/4)
		gained, lost, err := ls.step(sctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("lease renewal failed", "error", err)
		}
		for _, p := range lost {
			_, clean := ls.leaving[p]
			d.stop(p, clean)
			d.log.Info("partition given up", "partition", p)
		}
		hctx, cancel := context.WithTimeout(context.Background(), d.o.LeaseTTL/4)
		ls.handBack(hctx)
		cancel()
		for _, p := range gained {
			d.log.Info("partition taken", "partition", p)
			d.taken.Inc()
			d.start(ctx, js, state, snaps, p, ls.fence(d.o.Stream.Name, p))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (d *Detector) start(ctx context.Context, js jetstream.JetStream, state *progress, snaps *snapshots, p int, fence violations.Fence) {
	// Not under ctx: stop cancels it, after saying whether the partition
	// is handed back (at shutdown too, when Run gives every lease back).
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &running{cancel: cancel, done: make(chan struct{})}
	d.mu.Lock()
	d.owned[p] = r
	d.mu.Unlock()
	go func() {
		defer close(r.done)
		w := &partitionWorker{d: d, js: js, state: state, snaps: snaps, clean: &r.clean, p: p, fence: fence, log: d.log.With("partition", p)}
		if err := w.run(pctx); err != nil && pctx.Err() == nil {
			d.log.Error("partition stopped", "partition", p, "error", err)
		}
	}()
}

// stop ends the work on p and waits for it; clean when the partition is
// handed back (its lease still held), not lost.
func (d *Detector) stop(p int, clean bool) {
	d.mu.Lock()
	r, ok := d.owned[p]
	delete(d.owned, p)
	d.mu.Unlock()
	if ok {
		r.clean.Store(clean)
		r.cancel()
		<-r.done
	}
}

func (d *Detector) stopAll() {
	d.mu.Lock()
	var ps []int
	for p := range d.owned {
		ps = append(ps, p)
	}
	d.mu.Unlock()
	for _, p := range ps {
		d.stop(p, true) // the leases are released after
	}
}
