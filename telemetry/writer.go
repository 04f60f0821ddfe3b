package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/sanigate/sanigate/telemetry/spool"
)

// WriterOptions configure a Writer.
type WriterOptions struct {
	URL, Org, Bucket, Token string
	BatchSize               int           // lines per write request; default 5000
	FlushInterval           time.Duration // longest a partial batch waits; default 1s
	Timeout                 time.Duration // per request; default 10s
	DeadLetterFile          string        // lines InfluxDB refuses go here
	MaxBackoff              time.Duration // default 30s
	Gzip                    bool          // compress write requests
	// Route returns the bucket a measurement's lines go to, "" for Bucket
	// (see RouteBucket); nil sends every line to Bucket.
	Route   func(measurement string) string
	Metrics *Metrics
	Logger  *slog.Logger
}

// Writer is the spool consumer that delivers readings to InfluxDB through
// the v2 write API (gzip-compressed unless told not to), in batches. It advances its cursor only
// after InfluxDB accepted a batch, retries network errors, 5xx and 429 with
// exponential backoff and jitter for as long as it takes, and isolates lines
// InfluxDB refuses (4xx) into the dead-letter file. It relies on none of the
// client's in-memory retries (the blocking API has none).
type Writer struct {
	opts   WriterOptions
	client influxdb2.Client
	api    api.WriteAPIBlocking
	apis   map[string]api.WriteAPIBlocking // by bucket, for Route
	cons   *spool.Consumer
	log    *slog.Logger
	m      *Metrics

	// The memory of the last batch and of its parts by bucket, used again:
	// nothing keeps a batch once it is delivered.
	batch []byte
	parts map[string][]byte

	lastErr atomic.Value // string
	failing atomic.Bool
}

// NewWriter builds a writer reading from cons.
func NewWriter(cons *spool.Consumer, o WriterOptions) *Writer {
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	opts := influxdb2.DefaultOptions().
		SetUseGZip(o.Gzip).
		SetHTTPRequestTimeout(uint((o.Timeout + time.Second - 1) / time.Second)).
		SetMaxRetries(0)
	c := influxdb2.NewClientWithOptions(o.URL, o.Token, opts)
	w := &Writer{opts: o, client: c, api: c.WriteAPIBlocking(o.Org, o.Bucket), apis: map[string]api.WriteAPIBlocking{},
		cons: cons, log: o.Logger, m: o.Metrics}
	w.lastErr.Store("")
	return w
}

// Ping checks that InfluxDB answers.
func (w *Writer) Ping(ctx context.Context) error {
	ok, err := w.client.Ping(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("influxdb did not answer ping")
	}
	return nil
}

// Failing reports whether the last write attempt failed, and why.
func (w *Writer) Failing() (bool, string) {
	return w.failing.Load(), w.lastErr.Load().(string)
}

// Close releases the HTTP client.
func (w *Writer) Close() { w.client.Close() }

// Run delivers batches until ctx ends. On return everything it committed is in
// InfluxDB; what it had read but not delivered is read again next time.
func (w *Writer) Run(ctx context.Context) error {
	for {
		batch, end, err := w.gather(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, spool.ErrClosed) {
				return nil
			}
			return err
		}
		if err := w.deliverRouted(ctx, batch); err != nil {
			w.cons.Rewind()
			return nil // ctx ended while retrying
		}
		if err := w.cons.Commit(end); err != nil {
			// The lines are in InfluxDB and the cursor moved in memory;
			// only its file is behind. Stop, so that the supervisor
			// counts the failure, reports the writer down and starts it
			// again with backoff; until the file is written, a crash
			// would write some lines twice (the same points, so
			// InfluxDB keeps one of each).
			return fmt.Errorf("persist the writer's cursor: %w", err)
		}
	}
}

// gather reads records until the batch holds BatchSize lines or the first
// record has waited FlushInterval.
func (w *Writer) gather(ctx context.Context) ([]byte, int64, error) {
	batch := w.batch[:0]
	defer func() {
		if cap(batch) <= 16<<20 {
			w.batch = batch
		}
	}()
	var end int64
	lines := 0
	var deadline time.Time
	for lines < w.opts.BatchSize {
		rctx := ctx
		var cancel context.CancelFunc
		if !deadline.IsZero() {
			rctx, cancel = context.WithDeadline(ctx, deadline)
		}
		recs, err := w.cons.Next(rctx, w.opts.BatchSize-lines, 8<<20)
		if cancel != nil {
			cancel()
		}
		if err != nil {
			if lines > 0 && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				break
			}
			if lines > 0 && ctx.Err() != nil {
				// Shutting down: hand back what was read; it is read again.
				w.cons.Rewind()
			}
			return nil, 0, err
		}
		for _, r := range recs {
			batch = append(batch, r.Data...)
			if len(r.Data) > 0 && r.Data[len(r.Data)-1] != '\n' {
				batch = append(batch, '\n')
			}
			lines += bytes.Count(r.Data, []byte{'\n'})
			end = r.End
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(w.opts.FlushInterval)
		}
		if len(batch) >= 16<<20 || time.Now().After(deadline) {
			break
		}
	}
	return batch, end, nil
}

// class sorts a write error: retry it, split the batch, or neither.
func class(err error) (name string, retry, split bool) {
	var he *influxhttp.Error
	if errors.As(err, &he) && he.StatusCode != 0 {
		switch {
		case he.StatusCode == 429:
			return "throttled", true, false
		case he.StatusCode >= 500:
			return "server", true, false
		case he.StatusCode == 401 || he.StatusCode == 403 || he.StatusCode == 404:
			// Credentials or bucket: not the lines' fault; wait for the operator.
			return "auth", true, false
		default:
			// Other 4xx, 413 included: some lines are refused; split
			// the batch to find them.
			return "rejected", false, true
		}
	}
	// Anything else (a connection refused or reset, a timeout) is the
	// network's or the server's: retry.
	return "network", true, false
}

// deliver writes body, retrying and splitting as needed. It returns an error
// only when ctx ends.
func (w *Writer) deliver(ctx context.Context, to api.WriteAPIBlocking, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := w.write(ctx, to, body)
		if err == nil {
			w.failing.Store(false)
			if w.m != nil {
				w.m.WriteBatches.Inc()
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name, retry, split := class(err)
		if w.m != nil {
			w.m.WriteErrors.WithLabelValues(name).Inc()
		}
		w.failing.Store(true)
		w.lastErr.Store(err.Error())
		if split || !retry {
			return w.split(ctx, to, body, err)
		}
		if attempt == 0 || attempt%10 == 0 {
			w.log.Warn("influxdb write failed; retrying", "class", name, "attempt", attempt+1, "error", err)
		}
		if w.m != nil {
			w.m.WriteRetries.Inc()
		}
		// Full jitter: sleep a random time up to the backoff, so that many
		// gateways recovering together do not stampede InfluxDB.
		sleep := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		var he *influxhttp.Error
		if errors.As(err, &he) && he.RetryAfter > 0 {
			sleep = max(sleep, time.Duration(he.RetryAfter)*time.Second)
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, w.opts.MaxBackoff)
	}
}

// split isolates the lines InfluxDB refuses: halves are written separately,
// down to single lines, which go to the dead-letter file with the reason.
func (w *Writer) split(ctx context.Context, to api.WriteAPIBlocking, body []byte, cause error) error {
	lines := bytes.SplitAfter(bytes.TrimRight(body, "\n"), []byte{'\n'})
	if len(lines) <= 1 {
		w.deadLetter(body, cause)
		return nil
	}
	mid := len(lines) / 2
	for _, half := range [][][]byte{lines[:mid], lines[mid:]} {
		if err := w.deliver(ctx, to, bytes.Join(half, nil)); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) write(ctx context.Context, to api.WriteAPIBlocking, body []byte) error {
	start := time.Now()
	err := to.WriteRecord(ctx, string(bytes.TrimRight(body, "\n")))
	if w.m != nil {
		w.m.WriteLatency.Observe(time.Since(start).Seconds())
	}
	if err == nil {
		n := int64(bytes.Count(body, []byte{'\n'}))
		if len(body) > 0 && body[len(body)-1] != '\n' {
			n++
		}
		if w.m != nil {
			w.m.PointsWritten.Add(float64(n))
		}
	}
	return err
}

func (w *Writer) deadLetter(line []byte, cause error) {
	if w.m != nil {
		w.m.DeadLetters.Inc()
	}
	w.log.Error("influxdb refused a line; written to the dead-letter file", "file", w.opts.DeadLetterFile, "error", cause)
	if w.opts.DeadLetterFile == "" {
		return
	}
	f, err := os.OpenFile(w.opts.DeadLetterFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		w.log.Error("cannot open the dead-letter file", "error", err)
		return
	}
	defer f.Close()
	reason := bytes.ReplaceAll([]byte(cause.Error()), []byte{'\n'}, []byte{' '})
	fmt.Fprintf(f, "# %s %s\n%s", time.Now().UTC().Format(time.RFC3339), reason, line)
	if len(line) > 0 && line[len(line)-1] != '\n' {
		f.Write([]byte{'\n'})
	}
	_ = f.Sync()
}
