package simulators

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// IdleOptions configure a fleet of idle connections: devices that connect,
// then only keep their session, as most of a city's fleet does between
// readings.
type IdleOptions struct {
	Broker   string
	Devices  []string
	Password func(string) string
	// Dialers is the number of connections being opened at once; default 500.
	Dialers int
	// Retry is the pause before a device retries a refused or lost
	// connection, with up to as much again of random jitter; default 200ms.
	Retry time.Duration
	// Report receives progress lines: the first connection of all devices,
	// then each reconnection wave once every device is back.
	Report func(format string, args ...any)
}

// RaiseFileLimit lifts this process's soft limit of open files to its hard
// limit, and returns the new soft limit.
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get file limit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise file limit: %w", err)
	}
	return lim.Cur, nil
}

// Idle holds one MQTT 3.1.1 connection per device until ctx ends. Every
// device whose connection is lost (the gateway restarted) reconnects after
// Retry; once all are back, the time from the first loss to the last
// reconnection is reported. It returns the connections that never got in.
func Idle(ctx context.Context, o IdleOptions) error {
	if o.Dialers <= 0 {
		o.Dialers = 500
	}
	if o.Retry <= 0 {
		o.Retry = 200 * time.Millisecond
	}
	if o.Report == nil {
		o.Report = func(string, ...any) {}
	}
	w := &wave{n: int64(len(o.Devices)), report: o.Report, start: time.Now(), first: true}
	dial := make(chan struct{}, o.Dialers)
	var wg sync.WaitGroup
	for _, id := range o.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holdDevice(ctx, o, id, dial, w)
		}()
	}
	wg.Wait()
	if up := w.up.Load(); up < w.n && w.first {
		return fmt.Errorf("only %d of %d devices connected", up, w.n)
	}
	return nil
}

// wave times the (re)connection of the whole fleet.
type wave struct {
	n      int64
	report func(string, ...any)

	up    atomic.Int64 // devices connected now
	mu    sync.Mutex
	start time.Time // first loss of this wave (or the start)
	first bool
	down  bool
}

func (w *wave) connected() {
	if w.up.Add(1) != w.n {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first {
		w.report("connected=%d seconds=%.2f", w.n, time.Since(w.start).Seconds())
		w.first = false
	} else if w.down {
		now := time.Now()
		w.report("reconnected=%d seconds=%.2f at=%.3f", w.n, now.Sub(w.start).Seconds(), float64(now.UnixMilli())/1000)
	}
	w.down = false
}

func (w *wave) lost() {
	w.up.Add(-1)
	w.mu.Lock()
	if !w.down && !w.first {
		w.down, w.start = true, time.Now()
	}
	w.mu.Unlock()
}

func holdDevice(ctx context.Context, o IdleOptions, id string, dial chan struct{}, w *wave) {
	for ctx.Err() == nil {
		dial <- struct{}{}
		conn, err := idleConnect(ctx, o, id)
		<-dial
		if err != nil {
			pause(ctx, o.Retry)
			continue
		}
		w.connected()
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		_, _ = io.Copy(io.Discard, conn) // until the gateway closes it, or ctx ends
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return
		}
		w.lost()
		pause(ctx, o.Retry)
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d + rand.N(d+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// idleConnect opens a connection and completes CONNECT/CONNACK, keepalive
// 15 minutes (no PINGREQ during a bench).
func idleConnect(ctx context.Context, o IdleOptions, id string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", o.Broker)
	if err != nil {
		return nil, err
	}
	var body []byte
	body = mqttString(body, "MQTT")
	body = append(body, 4, 0xc2, 0x03, 0x84) // 3.1.1, username+password+clean session, keepalive 900 s
	body = mqttString(body, id+"-idle")
	body = mqttString(body, id)
	body = mqttString(body, o.Password(id))
	pkt := remainingLength([]byte{0x10}, len(body))
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write(append(pkt, body...)); err != nil {
		conn.Close()
		return nil, err
	}
	var ack [4]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		conn.Close()
		return nil, fmt.Errorf("connect refused: code %d", ack[3])
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}
