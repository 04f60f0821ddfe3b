package broker

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/simulators"
)

// rawConnect opens a connection and completes CONNECT/CONNACK with a bare
// MQTT 3.1.1 client that runs no goroutine of its own.
func rawConnect(addr, id, pw string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write(simulators.AppendConnect(nil, 4, id+"-c", id, pw)); err != nil {
		conn.Close()
		return nil, err
	}
	var ack [4]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		conn.Close()
		return nil, fmt.Errorf("connack % x: %v", ack, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// An idle device connection costs the broker at most two goroutines (mochi's
// read and write loops): acknowledgements have no goroutine per connection.
func TestIdleConnectionGoroutines(t *testing.T) {
	const n = 100
	devs, list := binsWithSecrets(n)
	secrets := map[string]string{}
	for i, d := range devs {
		secrets[d.ID] = list[i]
	}
	b, _ := startBroker(t, fleet.NewRegistry(devs), LoginLimits{})
	before := runtime.NumGoroutine()
	var conns []net.Conn
	for id, s := range secrets {
		c, err := rawConnect(b.Addr(), id, s)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// The session is counted just after CONNACK is sent.
	for i := 0; i < 500 && b.ConnectedDevices() != n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.ConnectedDevices(); got != n {
		t.Fatalf("connected: %d, want %d", got, n)
	}
	if extra := runtime.NumGoroutine() - before; extra > 2*n+4 {
		t.Errorf("%d connections added %d goroutines, want at most %d", n, extra, 2*n+4)
	}
}

// A storm of logins against slow hashes is served in full: every connection
// waits its turn at the verification pool, none is refused or times out.
func TestLoginStormAllServed(t *testing.T) {
	const n = 60
	var devs []fleet.Device
	for i := range n {
		h, err := fleet.HashPassword(fmt.Sprintf("pw-%d", i), 4)
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, fleet.Device{ID: fmt.Sprintf("bin-%03d", i), Kind: "bin", PasswordHash: h})
	}
	b, _ := startBroker(t, fleet.NewRegistry(devs), LoginLimits{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := rawConnect(b.Addr(), fmt.Sprintf("bin-%03d", i), fmt.Sprintf("pw-%d", i))
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// binsWithSecrets registers n bins ("bin-000000"...) with generated secrets,
// returned in the same order.
func binsWithSecrets(n int) ([]fleet.Device, []string) {
	devs := make([]fleet.Device, 0, n)
	secrets := make([]string, n)
	for i := range n {
		s, h, _ := fleet.GenerateSecret()
		secrets[i] = s
		devs = append(devs, fleet.Device{ID: fmt.Sprintf("bin-%06d", i), Kind: "bin", PasswordHash: h})
	}
	return devs, secrets
}
