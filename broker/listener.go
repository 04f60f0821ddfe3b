package broker

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener is a TCP listener for mochi that recovers a panic in a client's
// connection goroutine. mochi v2.7.9 recovers none there, so one malformed
// packet reaching a decoder bug would otherwise end the whole process.
type listener struct {
	id             string
	address        string
	connectTimeout time.Duration
	onPanic        func(r any, conn net.Conn)

	mu  sync.Mutex
	ln  net.Listener
	end atomic.Bool
	log *slog.Logger
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string       { return l.id }
func (l *listener) Protocol() string { return "tcp" }

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

func (l *listener) Serve(establish listeners.EstablishFn) {
	for !l.end.Load() {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.end.Load() {
				return
			}
			var ne net.Error
			if ok := asNetErr(err, &ne); ok && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		// A client must send CONNECT promptly; once connected, mochi moves
		// the deadline to 1.5 x its keepalive.
		_ = conn.SetDeadline(time.Now().Add(l.connectTimeout))
		go l.serveConn(establish, conn)
	}
}

func (l *listener) serveConn(establish listeners.EstablishFn, conn net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			l.onPanic(r, conn)
		}
	}()
	if err := establish(l.id, conn); err != nil && l.log != nil {
		l.log.Debug("mqtt connection ended", "remote", conn.RemoteAddr().String(), "error", err)
	}
}

func (l *listener) Close(closeClients listeners.CloseFn) {
	if l.end.CompareAndSwap(false, true) {
		closeClients(l.id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
	}
}

func asNetErr(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}
