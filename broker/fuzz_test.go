package broker

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

type onePassword struct{}

func (onePassword) Authenticate(device, password string) bool {
	return device == "bin-1" && password == "pw"
}

var (
	fuzzOnce   sync.Once
	fuzzBroker *Broker
)

// sharedBroker is one broker for every input of a fuzz run.
func sharedBroker(t testing.TB) *Broker {
	fuzzOnce.Do(func() {
		b, err := New(Options{Address: "127.0.0.1:0", Auth: onePassword{}, Handler: dropAll{}, Known: func(string) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		fuzzBroker = b
	})
	return fuzzBroker
}

// connectPacket is a CONNECT of bin-1 in protocol version v.
func connectPacket(v byte) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	body := append(str("MQTT"), v, 0xc2, 0x00, 0x3c)
	if v == 5 {
		body = append(body, 0x00)
	}
	body = append(body, str("bin-1-fuzz")...)
	body = append(body, str("bin-1")...)
	body = append(body, str("pw")...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

// FuzzMQTTFrames sends arbitrary bytes through the TCP listener, after a
// valid CONNECT (3.1.1 or 5) or instead of one. The broker must answer or
// close, never crash, and keep accepting.
func FuzzMQTTFrames(f *testing.F) {
	f.Add(byte(5), []byte{0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x03, 'a', '/', 'b'})            // mochi 501
	f.Add(byte(4), []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b'})                  // v4 no options
	f.Add(byte(0), []byte{0xff, 0xff, 0xff, 0xff, 0x7f, 0x00})                                 // garbage
	f.Add(byte(4), []byte{0x32, 0x04, 0xff, 0xff, 0x00, 0x01})                                 // bad topic length
	f.Add(byte(5), []byte{0x30, 0x05, 0x00, 0x00, 0x03, 0x23, 0x00})                           // alias property
	f.Add(byte(5), []byte{0x82, 0x0a, 0x00, 0x02, 0x00, 0x00, 0x04, '$', 'S', 'Y', 'S', 0x01}) // $SYS filter
	f.Add(byte(4), []byte{0xe0, 0x00})                                                         // disconnect
	f.Fuzz(func(t *testing.T, version byte, frames []byte) {
		b := sharedBroker(t)
		conn, err := net.DialTimeout("tcp", b.Addr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if version == 4 || version == 5 {
			_, _ = conn.Write(connectPacket(version))
		}
		_, _ = conn.Write(frames)
		// End of input: the broker sees EOF and closes, unless it waits for
		// more of a packet, which the deadline bounds.
		_ = conn.(*net.TCPConn).CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = io.Copy(io.Discard, bufio.NewReader(conn))
		_ = conn.Close()
		if ps := b.Problems(); len(ps) > 0 {
			t.Fatalf("listener problems: %v", ps)
		}
	})
}

// After many malformed connections the broker still serves, and holds no
// connection's goroutines.
func TestFramesLeaveNoGoroutines(t *testing.T) {
	b := sharedBroker(t)
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		conn, err := net.DialTimeout("tcp", b.Addr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(connectPacket(5))
		_, _ = conn.Write([]byte{0x82, 0x08, 0x00, 0x01, 0x00, 0x00, 0x03, 'a', '/', 'b'})
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.Copy(io.Discard, conn)
		conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for (runtime.NumGoroutine() > before+5 || b.ConnectedDevices() != 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+5 {
		t.Fatalf("goroutines: %d before, %d after 50 panicking connections", before, n)
	}
	if b.ConnectedDevices() != 0 {
		t.Fatalf("%d clients left connected", b.ConnectedDevices())
	}
}
