package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// Accept back-off bounds: a failing Accept (descriptors exhausted, kernel
// buffers short) is retried after a pause that doubles up to maxAcceptPause,
// so the loop neither spins nor gives up.
const (
	minAcceptPause = 5 * time.Millisecond
	maxAcceptPause = time.Second
	// failingAfter is how long accepts must keep failing before readiness
	// reports the listener.
	failingAfter = time.Second
)

// listener is a TCP (optionally TLS) listener for mochi that keeps accepting
// through transient accept errors and recovers a panic in a client's
// connection goroutine. mochi v2.7.9 recovers none there, so one malformed
// packet reaching a decoder bug would otherwise end the whole process.
type listener struct {
	id             string
	address        string
	tls            *tls.Config // nil: plain TCP
	connectTimeout time.Duration
	onPanic        func(r any, conn net.Conn)
	onAcceptError  func(id string, err error)

	mu        sync.Mutex
	ln        net.Listener
	failSince time.Time // first failure of the current run of accept errors
	lastErr   error
	stopped   error // why Serve ended without Close
	end       atomic.Bool
	log       *slog.Logger
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string { return l.id }
func (l *listener) Protocol() string {
	if l.tls != nil {
		return "tls"
	}
	return "tcp"
}

func (l *listener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

func (l *listener) Init(log *slog.Logger) error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.ln, l.log = ln, log
	l.mu.Unlock()
	return nil
}

// Serve accepts until Close. An accept error is retried after a growing
// pause; only a closed listener ends the loop, and then Problem reports it.
func (l *listener) Serve(establish listeners.EstablishFn) {
	pause := time.Duration(0)
	for !l.end.Load() {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.end.Load() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				l.mu.Lock()
				l.stopped = err
				l.mu.Unlock()
				l.onAcceptError(l.id, fmt.Errorf("listener closed: %w", err))
				return
			}
			pause = min(max(2*pause, minAcceptPause), maxAcceptPause)
			l.mu.Lock()
			if l.failSince.IsZero() {
				l.failSince = time.Now()
			}
			l.lastErr = err
			l.mu.Unlock()
			l.onAcceptError(l.id, err)
			time.Sleep(pause)
			continue
		}
		if pause > 0 {
			pause = 0
			l.mu.Lock()
			l.failSince, l.lastErr = time.Time{}, nil
			l.mu.Unlock()
		}
		// A client must send CONNECT (and finish its TLS handshake) promptly;
		// once connected, mochi moves the deadline to 1.5 x its keepalive.
		deadline := time.Now().Add(l.connectTimeout)
		_ = conn.SetDeadline(deadline)
		if l.tls != nil {
			conn = tls.Server(conn, l.tls)
		} else if tc, ok := conn.(*net.TCPConn); ok {
			conn = newDeviceConn(tc, deadline)
		}
		go l.serveConn(establish, conn)
	}
}

// Problem says why the listener is not accepting, or "" when it is.
func (l *listener) Problem() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.end.Load():
		return ""
	case l.stopped != nil:
		return fmt.Sprintf("mqtt listener %s stopped accepting: %v", l.id, l.stopped)
	case !l.failSince.IsZero() && time.Since(l.failSince) > failingAfter:
		return fmt.Sprintf("mqtt listener %s: accepts failing since %s: %v", l.id, l.failSince.UTC().Format(time.RFC3339), l.lastErr)
	}
	return ""
}

func (l *listener) serveConn(establish listeners.EstablishFn, conn net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			l.onPanic(r, conn)
		}
	}()
	if l.end.Load() {
		conn.Close()
		return
	}
	if err := establish(l.id, conn); err != nil && l.log != nil {
		l.log.Debug("mqtt connection ended", "remote", conn.RemoteAddr().String(), "error", err)
	}
}

// Close stops accepting. It leaves the clients to Broker.Close, which
// disconnects them all: mochi's own per-listener pass (Clients.GetByListener)
// takes the clients' read lock twice, which deadlocks once a disconnecting
// client waits to remove itself.
func (l *listener) Close(listeners.CloseFn) {
	l.end.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
	}
}
