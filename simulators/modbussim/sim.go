// Package modbussim runs Modbus slave simulators for the shipped register
// profiles of drivers/modbus (toilet controller, weighbridge, compactor bin),
// with values that change plausibly and deterministically for a seed, and
// faults a test can switch on: slow replies, "server device busy" exceptions,
// dropped connections, a dead device and replies with a wrong transaction id.
//
// A simulator is a github.com/simonvetter/modbus server holding the registers,
// behind a small front end on the public address that relays each request to
// it. The front end injects the faults (the server sets transaction ids
// itself, so a wrong one can only be written on the way out) and can speak RTU
// framing over TCP, which the server does not, as a serial device server does.
package modbussim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	mb "github.com/simonvetter/modbus"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/telemetry"
)

// Options configure a simulator.
type Options struct {
	// Seed makes the sequence of values repeatable.
	Seed uint64
	// Step is how often the values change; 0 means every second, a negative
	// value never (call Sim.Step).
	Step time.Duration
	// RTUOverTCP serves RTU frames (unit id, PDU, CRC) over TCP instead of
	// Modbus TCP's MBAP header.
	RTUOverTCP bool
	// UnitID is the only unit id answered; 0 answers any.
	UnitID uint8
}

// Sim is one running simulated device. Its methods are safe for concurrent use.
type Sim struct {
	opts    Options
	profile *modbus.Profile // nil for a bare register store
	backend *mb.ModbusServer
	bAddr   string
	ln      net.Listener
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	regs     map[modbus.Function]map[uint16]uint16 // bits are stored as 0 or 1
	model    model
	rng      *rand.Rand
	values   map[string]telemetry.Field
	clients  map[net.Conn]struct{}
	closed   bool
	delay    time.Duration
	busy     int
	wrongTID int
	silent   bool
	down     bool
	requests map[byte]int
	conns    int
}

// Start runs a simulator of profile (a name from modbus.ProfileNames, or ""
// for a bare register store that tests fill with SetRegisters and SetBits) on
// addr, for example "127.0.0.1:0". It stops when ctx ends or Close is called.
func Start(ctx context.Context, profile, addr string, opts Options) (*Sim, error) {
	s := &Sim{
		opts:     opts,
		regs:     map[modbus.Function]map[uint16]uint16{},
		values:   map[string]telemetry.Field{},
		clients:  map[net.Conn]struct{}{},
		requests: map[byte]int{},
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed5eed)),
	}
	for _, f := range modbus.Functions {
		s.regs[f] = map[uint16]uint16{}
	}
	if profile != "" {
		p, err := modbus.LoadProfile(profile)
		if err != nil {
			return nil, err
		}
		m, ok := models[profile]
		if !ok {
			return nil, fmt.Errorf("modbussim: no value model for profile %q", profile)
		}
		s.profile, s.model = p, m(s.rng)
		s.applyLocked(s.model.step(s.rng))
	}
	if err := s.startBackend(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = s.backend.Stop()
		return nil, err
	}
	s.ln = ln
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() { s.accept() })
	s.wg.Go(func() {
		<-ctx.Done()
		s.shutdown()
	})
	if step := opts.Step; step >= 0 && s.model != nil {
		if step == 0 {
			step = time.Second
		}
		s.wg.Go(func() {
			t := time.NewTicker(step)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.Step()
				}
			}
		})
	}
	return s, nil
}

// startBackend starts the register server on a free loopback port. The server
// does not report the port it bound, so a free one is found first; another
// process may take it in between, hence the few attempts.
func (s *Sim) startBackend() error {
	var err error
	for range 5 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		a := l.Addr().String()
		l.Close()
		s.backend, err = mb.NewServer(&mb.ServerConfiguration{
			URL: "tcp://" + a, Timeout: time.Hour, MaxClients: 4096,
			Logger: log.New(io.Discard, "", 0),
		}, handler{s})
		if err != nil {
			return err
		}
		if err = s.backend.Start(); err == nil {
			s.bAddr = a
			return nil
		}
	}
	return fmt.Errorf("modbussim: starting the register server: %w", err)
}

// Addr is the address the simulator listens on.
func (s *Sim) Addr() string { return s.ln.Addr().String() }

// Close stops the simulator and drops its connections. It is safe to call
// more than once.
func (s *Sim) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Sim) shutdown() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for c := range s.clients {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	_ = s.backend.Stop()
}

// Step advances the simulated values by one step.
func (s *Sim) Step() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.model != nil {
		s.applyLocked(s.model.step(s.rng))
	}
}

// Values returns the field values the device currently holds, as the driver
// should decode them (before rounding to the registers' resolution).
func (s *Sim) Values() map[string]telemetry.Field {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.values)
}

// SetField sets one field of a profile simulator, encoded by its register.
func (s *Sim) SetField(name string, f telemetry.Field) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(map[string]telemetry.Field{name: f})
}

func (s *Sim) applyLocked(fields map[string]telemetry.Field) error {
	if s.profile == nil {
		return errors.New("modbussim: a bare simulator has no fields")
	}
	for name, f := range fields {
		found := false
		for i := range s.profile.Registers {
			r := &s.profile.Registers[i]
			if r.Field != name {
				continue
			}
			vals, err := r.Encode(f)
			if err != nil {
				return err
			}
			m := s.regs[r.Function]
			if r.Type == modbus.Bit && !r.Function.Bits() {
				m[r.Address] = m[r.Address]&^(1<<r.Bit) | vals[0]
			} else {
				for j, v := range vals {
					m[r.Address+uint16(j)] = v
				}
			}
			s.values[name] = f
			found = true
		}
		if !found {
			return fmt.Errorf("modbussim: profile %s has no field %q", s.profile.Name, name)
		}
	}
	return nil
}

// SetRegisters sets holding or input registers from addr on.
func (s *Sim) SetRegisters(fn modbus.Function, addr uint16, vals ...uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range vals {
		s.regs[fn][addr+uint16(i)] = v
	}
}

// SetBits sets coils or discrete inputs from addr on.
func (s *Sim) SetBits(fn modbus.Function, addr uint16, vals ...bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range vals {
		var u uint16
		if v {
			u = 1
		}
		s.regs[fn][addr+uint16(i)] = u
	}
}

// SetDelay holds back every reply by d (0 for none): slow replies.
func (s *Sim) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// FailBusy answers the next n requests with exception 6, server device busy.
func (s *Sim) FailBusy(n int) { s.mu.Lock(); s.busy = n; s.mu.Unlock() }

// WrongTransactionID gives the next n replies a transaction id other than
// their request's (Modbus TCP only).
func (s *Sim) WrongTransactionID(n int) { s.mu.Lock(); s.wrongTID = n; s.mu.Unlock() }

// SetSilent makes the device read requests and never answer, as a dead
// device behind a live serial converter does.
func (s *Sim) SetSilent(on bool) { s.mu.Lock(); s.silent = on; s.mu.Unlock() }

// SetDown drops every connection, and while on closes new ones as soon as
// they are accepted.
func (s *Sim) SetDown(on bool) {
	s.mu.Lock()
	s.down = on
	s.mu.Unlock()
	if on {
		s.DropConnections()
	}
}

// DropConnections closes every client connection now.
func (s *Sim) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		c.Close()
	}
}

// Requests is the number of requests received, faulty replies included.
func (s *Sim) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.requests {
		n += v
	}
	return n
}

// RequestsFor is the number of requests received with function code fc.
func (s *Sim) RequestsFor(fc byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[fc]
}

// Connections is the number of connections accepted.
func (s *Sim) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Open is the number of client connections open now.
func (s *Sim) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func (s *Sim) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		if s.closed || s.down {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.clients[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.clients, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		})
	}
}

// serve relays the requests of one client connection to the register server.
func (s *Sim) serve(c net.Conn) {
	b, err := net.Dial("tcp", s.bAddr)
	if err != nil {
		return
	}
	defer b.Close()
	var tid uint16
	for {
		var unit byte
		var pdu []byte
		var reqTID uint16
		if s.opts.RTUOverTCP {
			unit, pdu, err = readRTURequest(c)
		} else {
			reqTID, unit, pdu, err = readMBAP(c)
		}
		if err != nil {
			return
		}
		s.mu.Lock()
		s.requests[pdu[0]]++
		silent, delay := s.silent, s.delay
		busy := s.busy > 0
		if busy {
			s.busy--
		}
		wrong := !s.opts.RTUOverTCP && s.wrongTID > 0
		if wrong {
			s.wrongTID--
		}
		s.mu.Unlock()
		if silent {
			continue
		}
		var resp []byte
		switch {
		case s.opts.UnitID != 0 && unit != s.opts.UnitID:
			continue // not addressed to this device: a serial slave stays quiet
		case busy:
			resp = []byte{pdu[0] | 0x80, 6}
		default:
			tid++
			if err := writeMBAP(b, tid, unit, pdu); err != nil {
				return
			}
			if _, _, resp, err = readMBAP(b); err != nil {
				return
			}
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		if s.opts.RTUOverTCP {
			err = writeRTU(c, unit, resp)
		} else {
			if wrong {
				reqTID += 0x100
			}
			err = writeMBAP(c, reqTID, unit, resp)
		}
		if err != nil {
			return
		}
	}
}

func readMBAP(r io.Reader) (tid uint16, unit byte, pdu []byte, err error) {
	var h [7]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint16(h[4:]))
	if n < 2 || n > 254 {
		return 0, 0, nil, fmt.Errorf("modbussim: bad MBAP length %d", n)
	}
	pdu = make([]byte, n-1)
	if _, err = io.ReadFull(r, pdu); err != nil {
		return
	}
	return binary.BigEndian.Uint16(h[:]), h[6], pdu, nil
}

func writeMBAP(w io.Writer, tid uint16, unit byte, pdu []byte) error {
	b := make([]byte, 7+len(pdu))
	binary.BigEndian.PutUint16(b, tid)
	binary.BigEndian.PutUint16(b[4:], uint16(len(pdu)+1))
	b[6] = unit
	copy(b[7:], pdu)
	_, err := w.Write(b)
	return err
}

// readRTURequest reads one RTU request frame, working out its length from the
// function code, and checks its CRC.
func readRTURequest(r io.Reader) (byte, []byte, error) {
	buf := make([]byte, 8, 264)
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return 0, nil, err
	}
	n := 8
	switch fc := buf[1]; fc {
	case 1, 2, 3, 4, 5, 6:
	case 15, 16:
		if _, err := io.ReadFull(r, buf[2:7]); err != nil {
			return 0, nil, err
		}
		n = 7 + int(buf[6]) + 2
		buf = buf[:n]
	default:
		return 0, nil, fmt.Errorf("modbussim: RTU function %d not served", fc)
	}
	start := 2
	if n > 8 {
		start = 7
	}
	if _, err := io.ReadFull(r, buf[start:n]); err != nil {
		return 0, nil, err
	}
	if crc16(buf[:n-2]) != binary.LittleEndian.Uint16(buf[n-2:]) {
		return 0, nil, errors.New("modbussim: bad CRC")
	}
	return buf[0], buf[1 : n-2], nil
}

func writeRTU(w io.Writer, unit byte, pdu []byte) error {
	b := append([]byte{unit}, pdu...)
	b = binary.LittleEndian.AppendUint16(b, crc16(b))
	_, err := w.Write(b)
	return err
}

// crc16 is the Modbus RTU CRC (polynomial 0xA001, initial 0xFFFF).
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// handler serves the register server from the simulator's store. Unmapped
// addresses read as zero, as on many controllers.
type handler struct{ s *Sim }

func (h handler) bits(fn modbus.Function, addr, n uint16) []bool {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	out := make([]bool, n)
	for i := range out {
		out[i] = h.s.regs[fn][addr+uint16(i)] != 0
	}
	return out
}

func (h handler) words(fn modbus.Function, addr, n uint16) []uint16 {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	out := make([]uint16, n)
	for i := range out {
		out[i] = h.s.regs[fn][addr+uint16(i)]
	}
	return out
}

func (h handler) HandleCoils(r *mb.CoilsRequest) ([]bool, error) {
	if r.IsWrite {
		h.s.SetBits(modbus.Coil, r.Addr, r.Args...)
		return nil, nil
	}
	return h.bits(modbus.Coil, r.Addr, r.Quantity), nil
}

func (h handler) HandleDiscreteInputs(r *mb.DiscreteInputsRequest) ([]bool, error) {
	return h.bits(modbus.Discrete, r.Addr, r.Quantity), nil
}

func (h handler) HandleHoldingRegisters(r *mb.HoldingRegistersRequest) ([]uint16, error) {
	if r.IsWrite {
		h.s.SetRegisters(modbus.Holding, r.Addr, r.Args...)
		return nil, nil
	}
	return h.words(modbus.Holding, r.Addr, r.Quantity), nil
}

func (h handler) HandleInputRegisters(r *mb.InputRegistersRequest) ([]uint16, error) {
	return h.words(modbus.Input, r.Addr, r.Quantity), nil
}
