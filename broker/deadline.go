package broker

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// deadlineSlack is how much later than asked a connection's deadline may
// fall. mochi moves a client's read and write deadline to 1.5 x its
// keepalive before every packet it reads; each move re-arms a runtime timer
// twice. Within this slack the deadline already set stands, so a device
// publishing every 20 ms costs one move a second instead of fifty, and a
// silent device is cut at most this much later than its keepalive allows.
const deadlineSlack = time.Second

// deviceConn is a plain TCP device connection. It keeps the deadline moves
// mochi asks for cheap (see deadlineSlack) and lets the acknowledgement
// sender write without arming a timer when the socket has room, which it
// has unless the device stopped reading.
type deviceConn struct {
	*net.TCPConn
	raw syscall.RawConn

	mu sync.Mutex
	rd time.Time // the read deadline in force
	wd time.Time // the write deadline in force, outside acknowledgement writes
	// bounded: an acknowledgement write has its own deadline armed; moves
	// of the write deadline are recorded and put in force after it.
	bounded bool
}

// newDeviceConn wraps c, whose deadline in force is d.
func newDeviceConn(c *net.TCPConn, d time.Time) net.Conn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	return &deviceConn{TCPConn: c, raw: raw, rd: d, wd: d}
}

func (c *deviceConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, rok := c.moveRead(t)
	w, wok := c.moveWrite(t)
	switch {
	case rok && wok && r.Equal(w):
		return c.TCPConn.SetDeadline(r)
	case rok && wok:
		return errors.Join(c.TCPConn.SetReadDeadline(r), c.TCPConn.SetWriteDeadline(w))
	case rok:
		return c.TCPConn.SetReadDeadline(r)
	case wok:
		return c.TCPConn.SetWriteDeadline(w)
	}
	return nil
}

func (c *deviceConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.moveRead(t); ok {
		return c.TCPConn.SetReadDeadline(d)
	}
	return nil
}

func (c *deviceConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.moveWrite(t); ok {
		return c.TCPConn.SetWriteDeadline(d)
	}
	return nil
}

// moveRead records a move of the read deadline to t and says whether the
// socket's must change, and to what. Called with mu held.
func (c *deviceConn) moveRead(t time.Time) (time.Time, bool) {
	d, ok := lazyDeadline(c.rd, t)
	if ok {
		c.rd = d
	}
	return d, ok
}

// moveWrite is moveRead for the write deadline, which an acknowledgement
// write in progress keeps for itself until it ends.
func (c *deviceConn) moveWrite(t time.Time) (time.Time, bool) {
	d, ok := lazyDeadline(c.wd, t)
	if ok {
		c.wd = d
	}
	return d, ok && !c.bounded
}

// lazyDeadline is the deadline to set when cur is in force and want is
// asked for, and whether it must be set at all: no deadline and earlier
// deadlines are set exactly, a later one with the slack added, and one within
// the slack before cur is already served by cur.
func lazyDeadline(cur, want time.Time) (time.Time, bool) {
	switch {
	case want.IsZero() || cur.IsZero():
		return want, !want.Equal(cur)
	case want.After(cur):
		return want.Add(deadlineSlack), true
	case cur.Sub(want) > deadlineSlack:
		return want, true
	}
	return cur, false
}

// writeBounded writes b, waiting at most timeout for the socket to take it.
// The first attempt is a plain non-blocking write; only a socket without
// room (a device not reading) arms the write deadline, which is then put
// back to the one in force.
func (c *deviceConn) writeBounded(b []byte, timeout time.Duration) error {
	var (
		n    int
		werr error
	)
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.Write(int(fd), b[n:])
			if k > 0 {
				n += k
			}
			if err == syscall.EINTR {
				continue
			}
			if err != nil && err != syscall.EAGAIN {
				werr = err
			}
			if err != nil || k == 0 {
				break
			}
		}
		return true // never wait here: the slow path below bounds the wait
	})
	switch {
	case err != nil:
		return err
	case werr != nil:
		return &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	case n == len(b):
		return nil
	}
	c.mu.Lock()
	c.bounded = true
	_ = c.TCPConn.SetWriteDeadline(time.Now().Add(timeout))
	c.mu.Unlock()
	_, err = c.TCPConn.Write(b[n:])
	c.mu.Lock()
	c.bounded = false
	_ = c.TCPConn.SetWriteDeadline(c.wd)
	c.mu.Unlock()
	return err
}
