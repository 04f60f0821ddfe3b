package simulators

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LoadOptions configure a load run: many devices publishing bin readings as
// fast as their window of unacknowledged messages allows (or at Rate).
type LoadOptions struct {
	Broker   string
	Devices  []string
	Password func(string) string
	QoS      byte
	Window   int           // QoS 1 messages in flight per connection; default 8
	Rate     float64       // messages per second over all devices; 0 means as fast as possible
	Duration time.Duration // default 10s
	// Base is the device time of the first reading; each message gets its
	// own millisecond after it, so no two readings of a device share a time.
	Base time.Time
	// Live stamps each reading with the time it is sent instead, as a
	// device with a synchronized clock does (a millisecond after the
	// device's last reading when it sends faster than that); Base is unused.
	Live bool
}

// LoadResult is what a load run measured.
type LoadResult struct {
	Sent, Acked int64
	Elapsed     time.Duration
	Latencies   []time.Duration // PUBACK latency of each acknowledged QoS 1 message, sorted
}

// Rate is messages acknowledged (QoS 1) or sent (QoS 0) per second.
func (r LoadResult) Rate() float64 {
	n := r.Acked
	if n == 0 {
		n = r.Sent
	}
	return float64(n) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0-100) of PUBACK latency.
func (r LoadResult) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

// Load runs a load of QoS 0 or 1 publishes with a minimal MQTT 3.1.1 client
// of its own, so that the client costs little of the machine it shares.
func Load(ctx context.Context, o LoadOptions) (LoadResult, error) {
	if o.Window <= 0 {
		o.Window = 8
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Base.IsZero() {
		o.Base = time.Now().Add(-time.Hour)
	}
	var sent, acked atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var perConn time.Duration
	if o.Rate > 0 {
		perConn = time.Duration(float64(time.Second) * float64(len(o.Devices)) / o.Rate)
	}
	errs := make(chan error, len(o.Devices))
	var wg sync.WaitGroup
	start := time.Now()
	for _, id := range o.Devices {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			l, err := loadConn(ctx, o, id, perConn, &sent, &acked)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", id, err)
			}
			mu.Lock()
			lats = append(lats, l...)
			mu.Unlock()
		}(id)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	res := LoadResult{Sent: sent.Load(), Acked: acked.Load(), Elapsed: elapsed, Latencies: lats}
	return res, <-errs
}

func loadConn(ctx context.Context, o LoadOptions, id string, period time.Duration, sent, acked *atomic.Int64) ([]time.Duration, error) {
	conn, r, err := loadConnect(ctx, o, id)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	topic := TopicPrefix + id + "/telemetry"
	sem := make(chan struct{}, o.Window)
	var sentAt [65536]int64
	var lats []time.Duration
	readDone := make(chan error, 1)
	if o.QoS > 0 {
		go func() { readDone <- readAcks(r, &sentAt, sem, acked, &lats) }()
	}
	w := bufio.NewWriterSize(conn, 64<<10)
	var next time.Time
	buf := make([]byte, 0, 512)
	payload := make([]byte, 0, 256)
	var lastTS int64
	for seq := 0; ; seq++ {
		if ctx.Err() != nil {
			break
		}
		if period > 0 {
			pace(ctx, w, &next, period)
		}
		pid := uint16(seq%65535 + 1)
		if o.QoS > 0 {
			select {
			case sem <- struct{}{}:
			default:
				if err := w.Flush(); err != nil {
					break
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
				}
			}
			if ctx.Err() != nil {
				break
			}
		}
		ts := o.Base.Add(time.Duration(seq) * time.Millisecond).UnixMilli()
		if o.Live {
			ts = max(time.Now().UnixMilli(), lastTS+1)
			lastTS = ts
		}
		payload = appendLoadPayload(payload[:0], ts, seq)
		if o.QoS > 0 {
			atomic.StoreInt64(&sentAt[pid], time.Now().UnixNano())
		}
		buf = AppendPublish(buf[:0], 4, o.QoS, topic, pid, payload)
		if _, err := w.Write(buf); err != nil {
			break
		}
		sent.Add(1)
		if o.QoS == 0 && seq%64 == 0 {
			w.Flush()
		}
	}
	w.Flush()
	if o.QoS > 0 {
		// Give the last acknowledgements a moment.
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		<-readDone
	}
	conn.Write([]byte{0xe0, 0})
	return lats, nil
}

// loadConnect connects device id to the broker and waits for an accepting
// CONNACK. Writes on the connection stop when ctx ends.
func loadConnect(ctx context.Context, o LoadOptions, id string) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", o.Broker)
	if err != nil {
		return nil, nil, err
	}
	go func() { <-ctx.Done(); conn.SetWriteDeadline(time.Now()) }()
	pkt := AppendConnect(nil, 4, id+"-bench", id, o.Password(id))
	if _, err := conn.Write(pkt); err != nil {
		conn.Close()
		return nil, nil, err
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	var connack [4]byte
	if _, err := io.ReadFull(r, connack[:]); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("connack: %w", err)
	}
	if connack[0] != 0x20 || connack[3] != 0 {
		conn.Close()
		return nil, nil, fmt.Errorf("connect refused: code %d", connack[3])
	}
	return conn, r, nil
}

// readAcks reads PUBACKs until the connection fails, appending to lats the
// latency of each from the send time in sentAt, counting it in acked and
// freeing one slot of the window sem. It returns the error that ended it.
func readAcks(r io.Reader, sentAt *[65536]int64, sem <-chan struct{}, acked *atomic.Int64, lats *[]time.Duration) error {
	var ack [4]byte
	for {
		if _, err := io.ReadFull(r, ack[:]); err != nil {
			return err
		}
		if ack[0] != 0x40 {
			return fmt.Errorf("unexpected packet %#x", ack[0])
		}
		pid := binary.BigEndian.Uint16(ack[2:])
		*lats = append(*lats, time.Duration(time.Now().UnixNano()-atomic.LoadInt64(&sentAt[pid])))
		acked.Add(1)
		<-sem
	}
}

// pace waits until the next send time, one period after the previous one,
// flushing w before it sleeps; it returns early when ctx ends.
func pace(ctx context.Context, w *bufio.Writer, next *time.Time, period time.Duration) {
	if next.IsZero() {
		*next = time.Now()
	}
	*next = next.Add(period)
	if d := time.Until(*next); d > 0 {
		w.Flush()
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// appendLoadPayload appends the bin reading the load generator sends as
// message seq, stamped ts (Unix milliseconds).
func appendLoadPayload(payload []byte, ts int64, seq int) []byte {
	payload = append(payload, `{"ts":`...)
	payload = strconv.AppendInt(payload, ts, 10)
	payload = append(payload, `,"fill_pct":`...)
	payload = strconv.AppendInt(payload, int64(seq%101), 10)
	return append(payload, `,"weight_kg":12.5,"temp_c":18.5,"battery_pct":88}`...)
}
