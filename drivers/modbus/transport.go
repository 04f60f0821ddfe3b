package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	gb "github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// link is a connection to one device: goburrow's transporters and ours all
// connect lazily, send one request at a time and close.
type link interface {
	gb.Transporter
	Connect() error
	Close() error
}

// session is a client bound to an open link.
type session struct {
	link   link
	client gb.Client
}

// newSession builds the client and link for d; it does not connect.
func newSession(d *Device) *session {
	switch d.Transport {
	case RTU:
		h := gb.NewRTUClientHandler(d.Address)
		h.BaudRate, h.DataBits, h.Parity, h.StopBits = d.BaudRate, d.DataBits, d.Parity, d.StopBits
		h.Timeout = d.Timeout
		h.IdleTimeout = 0 // the poller owns the connection's life
		h.SlaveId = d.UnitID
		return &session{link: h, client: gb.NewClient(h)}
	case RTUOverTCP:
		// goburrow frames RTU (unit id, CRC) but sends it only over a
		// serial port; stream carries the same frames over TCP.
		p := gb.NewRTUClientHandler("")
		p.SlaveId = d.UnitID
		t := &stream{addr: d.Address, timeout: d.Timeout, rtu: true}
		return &session{link: t, client: gb.NewClient2(p, t)}
	default:
		p := gb.NewTCPClientHandler(d.Address)
		p.SlaveId = d.UnitID
		t := &stream{addr: d.Address, timeout: d.Timeout}
		return &session{link: t, client: gb.NewClient2(tidCheck{p}, t)}
	}
}

// read performs one read request and checks the size of its answer.
func (s *session) read(rq *request) ([]byte, error) {
	var (
		data []byte
		err  error
	)
	switch rq.fn {
	case Coil:
		data, err = s.client.ReadCoils(rq.start, rq.count)
	case Discrete:
		data, err = s.client.ReadDiscreteInputs(rq.start, rq.count)
	case Holding:
		data, err = s.client.ReadHoldingRegisters(rq.start, rq.count)
	case Input:
		data, err = s.client.ReadInputRegisters(rq.start, rq.count)
	default:
		return nil, fmt.Errorf("unknown function %q", rq.fn)
	}
	if err != nil {
		return nil, err
	}
	want := 2 * int(rq.count)
	if rq.fn.Bits() {
		want = (int(rq.count) + 7) / 8
	}
	if len(data) != want {
		return nil, &shapeError{got: len(data), want: want}
	}
	return data, nil
}

// tidCheck verifies transaction ids itself so that a mismatch is a typed error
// (goburrow reports it as text), which the poller answers by redialling: a
// reply with another transaction's id means the stream is out of step.
type tidCheck struct{ *gb.TCPClientHandler }

// Verify checks the transaction id, then what goburrow checks (protocol and unit id).
func (t tidCheck) Verify(req, resp []byte) error {
	if len(resp) < 7 {
		return &shapeError{got: len(resp), want: 7}
	}
	if got, want := binary.BigEndian.Uint16(resp), binary.BigEndian.Uint16(req); got != want {
		return &MismatchError{Got: got, Want: want}
	}
	return t.TCPClientHandler.Verify(req, resp)
}

// MismatchError is a reply whose transaction id is not the request's.
type MismatchError struct{ Got, Want uint16 }

// Error says which ids differed.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("modbus: reply has transaction id %d, request had %d", e.Got, e.Want)
}

// shapeError is a reply whose size does not fit its request.
type shapeError struct{ got, want int }

func (e *shapeError) Error() string {
	return fmt.Sprintf("modbus: reply carries %d bytes, expected %d", e.got, e.want)
}

// stream carries Modbus frames over a TCP connection. It replaces goburrow's
// TCP transporter, which keeps a connection after a timeout (so a late reply is
// read as the next answer: goburrow issues 64 and 103) and after a failed write
// (pull request 99), and whose Close waits for a request in flight. Here Close
// interrupts a blocked Send, and the poller closes the stream after any
// failure but a Modbus exception.
//
// With rtu set it sends RTU frames, as serial device servers and 4G DTUs in
// transparent mode expect. RTU frames carry no transaction id, so a late reply
// can be told from a fresh one only by its timing: redialling after every
// timeout is what keeps the stream in step.
type stream struct {
	addr    string
	timeout time.Duration
	rtu     bool

	mu   sync.Mutex // serialises Send and Connect
	cmu  sync.Mutex // guards conn, so that Close interrupts a blocked Send
	conn net.Conn
}

// Connect dials the device if no connection is open.
func (t *stream) Connect() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.connect()
	return err
}

func (t *stream) connect() (net.Conn, error) {
	t.cmu.Lock()
	c := t.conn
	t.cmu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := net.DialTimeout("tcp", t.addr, t.timeout)
	if err != nil {
		return nil, err
	}
	t.cmu.Lock()
	t.conn = c
	t.cmu.Unlock()
	return c, nil
}

// Close closes the connection; a Send blocked on it returns an error. It is
// safe to call at any time and more than once.
func (t *stream) Close() error {
	t.cmu.Lock()
	defer t.cmu.Unlock()
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}

// Send writes one request and reads exactly one reply within the timeout.
func (t *stream) Send(req []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.connect()
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(t.timeout)); err != nil {
		return nil, err
	}
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	if t.rtu {
		return readRTU(c)
	}
	return readMBAP(c)
}

// readMBAP reads one Modbus TCP frame: a 7-byte header whose length field
// counts the unit id and the PDU.
func readMBAP(r io.Reader) ([]byte, error) {
	var buf [7 + 254]byte
	if _, err := io.ReadFull(r, buf[:7]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(buf[4:]))
	if n < 2 || n > 254 {
		return nil, fmt.Errorf("modbus: reply header gives length %d", n)
	}
	if _, err := io.ReadFull(r, buf[7:6+n]); err != nil {
		return nil, err
	}
	return append([]byte(nil), buf[:6+n]...), nil
}

// readRTU reads one RTU reply, working out its length from the function code
// as a serial master does.
func readRTU(r io.Reader) ([]byte, error) {
	var buf [256]byte
	if _, err := io.ReadFull(r, buf[:3]); err != nil {
		return nil, err
	}
	var n int
	switch fc := buf[1]; {
	case fc&0x80 != 0:
		n = 5 // unit, function, exception code, CRC
	case fc >= 1 && fc <= 4:
		n = 3 + int(buf[2]) + 2 // unit, function, byte count, data, CRC
	case fc == 5 || fc == 6 || fc == 15 || fc == 16:
		n = 8
	default:
		return nil, fmt.Errorf("modbus: reply with unexpected function code %d", fc)
	}
	if _, err := io.ReadFull(r, buf[3:n]); err != nil {
		return nil, err
	}
	return append([]byte(nil), buf[:n]...), nil
}

// ErrorKind names the ways a poll can fail; it labels the errors metric.
type ErrorKind string

// Error kinds.
const (
	KindTimeout   ErrorKind = "timeout"   // no reply in time
	KindIO        ErrorKind = "io"        // connect, read or write failed, or the reply was malformed
	KindMismatch  ErrorKind = "mismatch"  // the reply belongs to another transaction
	KindBusy      ErrorKind = "busy"      // exception 6, server device busy
	KindException ErrorKind = "exception" // any other Modbus exception
	KindDecode    ErrorKind = "decode"    // a value could not be decoded (NaN, wrong size)
)

// ErrorKinds lists every error kind.
var ErrorKinds = []ErrorKind{KindTimeout, KindIO, KindMismatch, KindBusy, KindException, KindDecode}

// classify returns the kind of err and whether the connection must be closed
// and redialled: after anything but a well-formed exception reply the stream
// may be out of step.
func classify(err error) (ErrorKind, bool) {
	var me *gb.ModbusError
	var mm *MismatchError
	var se *shapeError
	var ne net.Error
	switch {
	case errors.As(err, &me):
		if me.ExceptionCode == gb.ExceptionCodeServerDeviceBusy {
			return KindBusy, false
		}
		return KindException, false
	case errors.As(err, &mm):
		return KindMismatch, true
	case errors.As(err, &se):
		return KindDecode, true
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, serial.ErrTimeout),
		errors.As(err, &ne) && ne.Timeout():
		return KindTimeout, true
	}
	return KindIO, true
}
