package broker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/simulators"
)

func TestLazyDeadline(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		cur, want time.Time
		set       time.Time
		ok        bool
	}{
		{"none asked, none set", time.Time{}, time.Time{}, time.Time{}, false},
		{"first deadline is set exactly", time.Time{}, t0, t0, true},
		{"cleared", t0, time.Time{}, time.Time{}, true},
		{"later: set with the slack", t0, t0.Add(time.Millisecond), t0.Add(time.Millisecond + deadlineSlack), true},
		{"within the slack before: kept", t0.Add(deadlineSlack), t0.Add(time.Millisecond), t0.Add(deadlineSlack), false},
		{"same: kept", t0, t0, t0, false},
		{"earlier than the slack: set exactly", t0.Add(3 * deadlineSlack), t0, t0, true},
	} {
		set, ok := lazyDeadline(c.cur, c.want)
		if ok != c.ok || !set.Equal(c.set) {
			t.Errorf("%s: lazyDeadline(%v, %v) = %v, %v; want %v, %v", c.name, c.cur, c.want, set, ok, c.set, c.ok)
		}
	}
}

// startInstantBroker starts a broker for devs whose every publish is
// durable at once, as the spool's group commit makes it later.
func startInstantBroker(t *testing.T, devs []fleet.Device) *Broker {
	t.Helper()
	h := instant{done: make(chan func(error), 1024)}
	go func() {
		for d := range h.done {
			d(nil)
		}
	}()
	b, err := New(Options{Address: "127.0.0.1:0", Auth: fleet.NewRegistry(devs), Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Close(context.Background())
		close(h.done)
	})
	return b
}

// connectKeepalive connects id with the given keepalive over MQTT 3.1.1.
func connectKeepalive(t *testing.T, addr, id, pw string, keepalive byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pk := simulators.AppendConnect(nil, 4, id+"-c", id, pw)
	pk[2+8], pk[2+9] = 0, keepalive // the keepalive field of the variable header
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(pk); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var ack [4]byte
	if _, err := io.ReadFull(r, ack[:]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connack % x: %v", ack, err)
	}
	return c, r
}

// Deadline moves within the slack are skipped, but a device that falls
// silent is still cut: not before 1.5 x its keepalive ([MQTT-3.1.2-22]), and
// at most the slack later (this test does not time that).
func TestSilentDeviceCutAfterKeepalive(t *testing.T) {
	devs, secrets := binsWithSecrets(1)
	b := startInstantBroker(t, devs)
	c, r := connectKeepalive(t, b.Addr(), devs[0].ID, secrets[0], 2)
	topic := TopicPrefix + devs[0].ID + "/telemetry"
	var ack [4]byte
	for i := range 20 { // each read moves the deadline; most moves fall within the slack
		time.Sleep(50 * time.Millisecond)
		if _, err := c.Write(simulators.AppendPublish(nil, 4, 1, topic, uint16(i+1), []byte(`{"fill_pct":10}`))); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, ack[:]); err != nil || ack[0] != 0x40 {
			t.Fatalf("puback %d: % x, %v", i, ack, err)
		}
	}
	last := time.Now()
	_, err := r.ReadByte()
	silent := time.Since(last)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("after %v silent the broker had not closed the connection (read: %v)", silent, err)
	}
	if silent < 3*time.Second {
		t.Fatalf("cut after %v silent (%v), before 1.5 x the 2 s keepalive", silent, err)
	}
	t.Logf("cut after %v silent (keepalive 2 s, slack %v)", silent, deadlineSlack)
}

// A device that stops reading its acknowledgements fills its socket; the
// sender then waits at most ackWriteTimeout for it and cuts it, while another
// device on the same broker keeps getting its acknowledgements.
func TestDeviceNotReadingAcksIsCut(t *testing.T) {
	devs, secrets := binsWithSecrets(2)
	b := startInstantBroker(t, devs)
	stuck, _ := connectKeepalive(t, b.Addr(), devs[0].ID, secrets[0], 60)
	if tc, ok := stuck.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	good, goodR := connectKeepalive(t, b.Addr(), devs[1].ID, secrets[1], 60)

	// The stuck device publishes without ever reading until the broker cuts
	// it (its writes then fail), at most 5,000,000 publishes.
	cut := make(chan int, 1)
	go func() {
		topic := TopicPrefix + devs[0].ID + "/telemetry"
		var batch []byte
		for i := 0; i < 5_000_000; i += 100 {
			batch = batch[:0]
			for k := range 100 {
				batch = simulators.AppendPublish(batch, 4, 1, topic, uint16((i+k)%65535+1), []byte(`{"fill_pct":1}`))
			}
			_ = stuck.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := stuck.Write(batch); err != nil {
				cut <- i
				return
			}
		}
		cut <- -1
	}()
	topic := TopicPrefix + devs[1].ID + "/telemetry"
	var ack [4]byte
	giveUp := time.Now().Add(2 * time.Minute) // a bound for the loop, not a figure
	for i := 1; ; i++ {
		select {
		case n := <-cut:
			if n < 0 {
				t.Fatal("the device that reads nothing was never cut")
			}
			t.Logf("the stuck device was cut after about %d publishes; the other got %d acknowledgements meanwhile", n, i-1)
			return
		default:
		}
		if time.Now().After(giveUp) {
			t.Fatalf("no cut within 2 minutes (%d round trips of the other device)", i)
		}
		_ = good.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := good.Write(simulators.AppendPublish(nil, 4, 1, topic, uint16(i%65535+1), []byte(`{"fill_pct":2}`))); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(goodR, ack[:]); err != nil || ack[0] != 0x40 {
			t.Fatalf("the reading device's puback %d: % x, %v", i, ack, err)
		}
	}
}

// A deadline move that changes the read and the write deadline to different
// times (one set exactly, one with the slack) puts both in force.
func TestDeviceConnMovesBothDeadlines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("no connection accepted")
	}
	defer server.Close()
	c := newDeviceConn(server.(*net.TCPConn), time.Time{})
	now := time.Now()
	_ = c.SetDeadline(now.Add(time.Hour))
	_ = c.SetWriteDeadline(now.Add(-10 * time.Second)) // past: writes fail
	if _, err := c.Write([]byte{1}); err == nil {
		t.Fatal("a write past its deadline succeeded")
	}
	// The read deadline moves back (exactly), the write one forward (with
	// the slack): both must take effect.
	_ = c.SetDeadline(now.Add(time.Minute))
	if _, err := c.Write([]byte{2}); err != nil {
		t.Fatalf("write after the deadline moved forward: %v", err)
	}
	dc := c.(*deviceConn)
	if !dc.rd.Equal(now.Add(time.Minute)) || !dc.wd.Equal(now.Add(time.Minute+deadlineSlack)) {
		t.Fatalf("deadlines in force: read %v, write %v", dc.rd.Sub(now), dc.wd.Sub(now))
	}
}
