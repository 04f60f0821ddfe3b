package broker

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/fleet"
)

// A gateway that stops is not its devices going offline: closing the broker
// ends every connection without a last-will signal, while a connection that
// drops on its own still gives one.
func TestCloseSendsNoLastWills(t *testing.T) {
	const n = 50
	devs, secrets := binsWithSecrets(n)
	var wills atomic.Int64
	b, err := New(Options{Address: "127.0.0.1:0", Auth: fleet.NewRegistry(devs), Handler: discard{},
		Registerer: prometheus.NewRegistry(), OnLastWill: func(string) { wills.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, n)
	for i := range n {
		c, err := rawConnect(b.Addr(), devs[i].ID, secrets[i])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	// One device's connection drops: that is its last will.
	conns[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for wills.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := wills.Load(); got != 1 {
		t.Fatalf("a dropped connection gave %d last wills, want 1", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // a will runs on its own goroutine
	if got := wills.Load(); got != 1 {
		t.Fatalf("closing the broker gave %d more last wills, want none", got-1)
	}
}

// Devices reconnect the moment they are dropped: Close still ends every
// connection, also those that came back while it was disconnecting the
// others, and returns.
func TestCloseWhileDevicesReconnect(t *testing.T) {
	const n = 1000
	devs, secrets := binsWithSecrets(n)
	b, err := New(Options{Address: "127.0.0.1:0", Auth: fleet.NewRegistry(devs), Handler: discard{},
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	var connected atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; round < 50; round++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := rawConnect(addr, devs[i].ID, secrets[i])
				if err != nil {
					continue // the listener is closing
				}
				connected.Add(1)
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, _ = io.Copy(io.Discard, c) // until the broker drops it
				c.Close()
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for connected.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("close with devices reconnecting: %v", err)
	}
	close(stop)
	wg.Wait()
}
