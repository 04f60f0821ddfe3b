package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/telemetry/spool"
)

// AppendedHeader carries the time the gateway appended a reading to its
// spool (Unix nanoseconds), from which a detector measures the delay the
// cluster adds.
const AppendedHeader = "Sanigate-Appended"

// OfflineHeader marks a message that is no reading but a device's last will:
// its value is the device, and AppendedHeader holds when the will fired.
const OfflineHeader = "Sanigate-Offline"

// Select tells the forwarder which spool records are device readings: it
// returns the record's device and true for a reading, and false for a record
// that stays local (violations and case events, which detectors derive again).
type Select func(data []byte) (device string, ok bool)

// ForwarderOptions configure a Forwarder.
type ForwarderOptions struct {
	// URLs are the NATS servers to connect to (any of a cluster's nodes).
	URLs []string
	// Stream is the stream readings go to; the forwarder creates it, or
	// updates it to these options, when it connects.
	Stream StreamOptions
	// Select picks the records to forward (required).
	Select Select
	// Window is how many publishes may await JetStream's acknowledgement at
	// once (default 1024).
	Window int
	// AckTimeout is how long a publish may wait for its acknowledgement
	// before the forwarder sends it again from the cursor (default 5s).
	AckTimeout time.Duration
	// CommitInterval is how often the cursor is persisted while
	// acknowledgements come in (default 50ms); it bounds what a crash replays.
	CommitInterval time.Duration
	// Name names the client connection on the servers (default "sanigate").
	Name       string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Forwarder sends device readings from a spool consumer to the stream. It
// moves the consumer's cursor only past records JetStream has acknowledged
// (or that are not forwarded), in order, so that what the cursor has passed
// is stored on a majority of the stream's replicas. A message id derived from
// the record's content lets JetStream drop a record sent twice (after a
// timeout, a reconnect or a restart) within the duplicate window.
//
// Run is called once; Connected may be called from any goroutine.
type Forwarder struct {
	cons      *spool.Consumer
	o         ForwarderOptions
	m         *forwardMetrics
	log       *slog.Logger
	connected atomic.Bool
	js        atomic.Pointer[jetstream.JetStream]
}

// NewForwarder returns a forwarder reading cons.
func NewForwarder(cons *spool.Consumer, o ForwarderOptions) (*Forwarder, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("cluster: no NATS server URL")
	}
	if o.Select == nil {
		return nil, errors.New("cluster: no record selector")
	}
	o.Stream.defaults()
	if o.Window <= 0 {
		o.Window = 1024
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = 50 * time.Millisecond
	}
	if o.Name == "" {
		o.Name = "sanigate"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{cons: cons, o: o, log: o.Logger}
	m, err := newForwardMetrics(o.Registerer, f)
	if err != nil {
		return nil, err
	}
	f.m = m
	return f, nil
}

// Connected reports whether the forwarder is connected to a NATS server.
func (f *Forwarder) Connected() bool { return f.connected.Load() }

// MsgID is the JetStream message id of a record of device: the device and a
// hash of the record's bytes. It is the same on every replay and on every
// gateway, so a device that sends a message again through another gateway
// is stored once too (within the duplicate window).
func MsgID(device string, data []byte) string {
	sum := sha256.Sum256(data)
	return device + "." + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Run connects, makes sure the stream exists and forwards from the
// consumer's cursor until ctx ends. It keeps reconnecting while NATS is
// unreachable (the spool holds the readings meanwhile). When ctx ends it
// waits up to AckTimeout for the acknowledgements of what it sent, commits
// the cursor and returns nil.
func (f *Forwarder) Run(ctx context.Context) error {
	nc, err := nats.Connect(strings.Join(f.o.URLs, ","),
		nats.Name(f.o.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ConnectHandler(func(c *nats.Conn) { f.log.Info("connected to nats", "server", c.ConnectedUrlRedacted()) }),
		nats.ReconnectHandler(func(c *nats.Conn) { f.log.Info("reconnected to nats", "server", c.ConnectedUrlRedacted()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { f.log.Warn("disconnected from nats", "error", err) }),
	)
	if err != nil {
		return fmt.Errorf("cluster: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4*f.o.Window),
		jetstream.WithPublishAsyncTimeout(f.o.AckTimeout))
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	f.js.Store(&js)
	defer f.js.Store(nil)
	bo := newBackoff()
	for {
		ectx, cancel := context.WithTimeout(ctx, f.o.AckTimeout)
		_, err := EnsureStream(ectx, js, f.o.Stream)
		cancel()
		if err == nil {
			break
		}
		f.m.errors.Inc()
		f.log.Warn("stream not ready; the spool keeps the readings", "stream", f.o.Stream.Name, "error", err)
		if !bo.wait(ctx) {
			return nil
		}
	}
	f.log.Info("forwarding to stream", "stream", f.o.Stream.Name, "partitions", f.o.Stream.Partitions,
		"replicas", f.o.Stream.Replicas, "from", f.cons.Committed())
	return f.forward(ctx, nc, js)
}

// inflight is one record on its way; ok is nil for a record not forwarded.
type inflight struct {
	end      int64
	appended time.Time
	sent     time.Time
	ok       <-chan *jetstream.PubAck
	err      <-chan error
}

// forward is the loop: read a batch, publish it asynchronously, settle the
// acknowledged head of the window, commit from time to time.
func (f *Forwarder) forward(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	w := &window{f: f, acked: f.cons.Committed()}
	w.committed = w.acked
	bo := newBackoff()
	for {
		f.connected.Store(nc.Status() == nats.CONNECTED)
		if ctx.Err() != nil {
			w.drain()
			return nil
		}
		before := w.acked
		if err := w.settle(len(w.q) >= f.o.Window); err != nil {
			f.fail(w, err)
			if !bo.wait(ctx) {
				w.drain()
				return nil
			}
			continue
		}
		if w.acked > before {
			bo.reset() // failures back off longer only while nothing gets through
		}
		w.maybeCommit(false)
		if nc.Status() != nats.CONNECTED {
			if len(w.q) > 0 {
				if err := w.settle(true); err != nil {
					f.fail(w, err)
				}
				continue
			}
			// Disconnected: the client reconnects by itself; look again soon.
			if !sleep(ctx, 100*time.Millisecond) {
				w.drain()
				return nil
			}
			continue
		}
		room := f.o.Window - len(w.q)
		if room <= 0 {
			continue
		}
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if len(w.q) > 0 {
			// Acknowledgements are pending: come back soon to commit them.
			rctx, cancel = context.WithTimeout(ctx, 2*time.Millisecond)
		}
		recs, err := f.cons.Next(rctx, min(room, 512), 1<<20)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				continue
			}
			w.drain()
			if errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return fmt.Errorf("cluster: read spool: %w", err)
		}
		if err := f.publish(js, w, recs); err != nil {
			f.fail(w, err)
			if !bo.wait(ctx) {
				w.drain()
				return nil
			}
		}
	}
}

// publish sends the readings among recs and queues every record in order.
func (f *Forwarder) publish(js jetstream.JetStream, w *window, recs []spool.Record) error {
	for _, rec := range recs {
		dev, ok := f.o.Select(rec.Data)
		if !ok {
			w.q = append(w.q, inflight{end: rec.End})
			continue
		}
		msg := &nats.Msg{
			Subject: Subject(f.o.Stream.SubjectPrefix, Partition(dev, f.o.Stream.Partitions)),
			Data:    rec.Data,
			Header:  nats.Header{},
		}
		msg.Header.Set(jetstream.MsgIDHeader, MsgID(dev, rec.Data))
		msg.Header.Set(AppendedHeader, strconv.FormatInt(rec.Appended.UnixNano(), 10))
		fut, err := js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish record at %d of %s: %w", rec.Offset, dev, err)
		}
		w.q = append(w.q, inflight{end: rec.End, appended: rec.Appended, sent: time.Now(), ok: fut.Ok(), err: fut.Err()})
	}
	return nil
}

// fail gives up on what is in flight: it commits the acknowledged prefix and
// rewinds the consumer to it, so the rest is sent again (JetStream drops the
// ones it already has by their message id).
func (f *Forwarder) fail(w *window, err error) {
	f.m.errors.Inc()
	f.log.Warn("forwarding failed; sending again from the cursor", "error", err, "cursor", w.acked, "in_flight", len(w.q))
	w.maybeCommit(true)
	w.q = w.q[:0]
	f.cons.Rewind()
}

// Offline sends a device's last will to the partition's detector, straight
// to the stream (not through the spool): best effort, as a will is. It may
// be called from any goroutine while Run runs.
func (f *Forwarder) Offline(ctx context.Context, device string, at time.Time) error {
	js := f.js.Load()
	if js == nil {
		return errors.New("cluster: not connected")
	}
	msg := &nats.Msg{Subject: Subject(f.o.Stream.SubjectPrefix, Partition(device, f.o.Stream.Partitions)), Header: nats.Header{}}
	msg.Header.Set(OfflineHeader, device)
	msg.Header.Set(AppendedHeader, strconv.FormatInt(at.UnixNano(), 10))
	msg.Header.Set(jetstream.MsgIDHeader, "offline."+device+"."+strconv.FormatInt(at.UnixNano(), 10))
	if _, err := (*js).PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("cluster: last will of %s: %w", device, err)
	}
	return nil
}
