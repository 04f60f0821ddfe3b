package modbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/modbussim"
)

// TestConformance holds the promises every driver makes: cancellation stops
// polling and closes connections, even with a request in flight; Close is
// safe twice and before Run; Run runs once.
func TestConformance(t *testing.T) {
	t.Run("cancel stops polling", func(t *testing.T) {
		sim := startSim(t, "", modbussim.Options{})
		silent := startSim(t, "", modbussim.Options{RTUOverTCP: true})
		silent.SetSilent(true)
		cfg := parse(t, "devices:\n"+deviceYAML("a", sim.Addr(), "tcp", "poll_interval: 100ms, timeout: 50ms,")+
			deviceYAML("b", silent.Addr(), "rtu_over_tcp", "poll_interval: 100ms, timeout: 50ms,"))
		cfg.Devices[1].Timeout = time.Hour // in flight when cancelled
		em := &collector{}
		p, err := modbus.NewPoller(cfg, em, modbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		testenv.Eventually(t, 30*time.Second, "both devices are asked", func() bool { return sim.Requests() > 0 && silent.Requests() > 0 })
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		n := sim.Requests()
		if got := len(em.readings("b")); got != 0 {
			t.Errorf("silent device: %d readings", got)
		}
		// Nothing polls any more: a further poll would need a goroutine
		// that Run has already waited for.
		if got := sim.Requests(); got != n {
			t.Errorf("requests after Run returned: %d -> %d", n, got)
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		if err := p.Run(context.Background()); !errors.Is(err, modbus.ErrClosed) {
			t.Errorf("Run after close: got %v, want ErrClosed", err)
		}
	})
	t.Run("close before run", func(t *testing.T) {
		p, err := modbus.NewPoller(&modbus.Config{}, &collector{}, modbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		p.Close()
		if err := p.Run(context.Background()); !errors.Is(err, modbus.ErrClosed) {
			t.Errorf("got %v, want ErrClosed", err)
		}
	})
	t.Run("close stops run", func(t *testing.T) {
		sim := startSim(t, "", modbussim.Options{})
		cfg := parse(t, "devices:\n"+deviceYAML("a", sim.Addr(), "tcp", "poll_interval: 100ms, timeout: 50ms,"))
		p, err := modbus.NewPoller(cfg, &collector{}, modbus.Options{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		testenv.Eventually(t, 30*time.Second, "a request", func() bool { return sim.Requests() > 0 })
		go p.Close()
		p.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Run("metrics registered twice", func(t *testing.T) {
		reg := newRegistry()
		if _, err := modbus.NewPoller(&modbus.Config{}, &collector{}, modbus.Options{Registerer: reg}); err != nil {
			t.Fatal(err)
		}
		if _, err := modbus.NewPoller(&modbus.Config{}, &collector{}, modbus.Options{Registerer: reg}); err == nil {
			t.Error("second poller on one registry: got no error")
		}
	})
	t.Run("nil emitter", func(t *testing.T) {
		if _, err := modbus.NewPoller(&modbus.Config{}, nil, modbus.Options{}); err == nil {
			t.Error("got no error")
		}
	})
}
