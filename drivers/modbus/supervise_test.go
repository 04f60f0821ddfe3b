package modbus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/modbussim"
)

// loopLog is a LoopWatcher that records what it is told.
type loopLog struct {
	mu      sync.Mutex
	failed  []string // device/reason
	running map[string]int
}

func (l *loopLog) LoopFailed(device, reason string, err error, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = append(l.failed, device+"/"+reason)
}

func (l *loopLog) LoopRunning(device string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running == nil {
		l.running = map[string]int{}
	}
	l.running[device]++
}

func (l *loopLog) snapshot() ([]string, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	run := map[string]int{}
	for k, v := range l.running {
		run[k] = v
	}
	return append([]string(nil), l.failed...), run
}

// A panic in one device's polling loop is recovered, counted and the loop
// restarted: that device's readings continue after it, and the other
// device's loop is never touched.
func TestDeviceLoopPanicRestarts(t *testing.T) {
	flaky := startSim(t, "toilet_controller", modbussim.Options{Seed: 3, Step: -1})
	steady := startSim(t, "toilet_controller", modbussim.Options{Seed: 4, Step: -1})
	cfg := parse(t, fmt.Sprintf(`devices:
- {id: flaky, profile: toilet_controller, transport: tcp, address: %q, unit_id: 1, poll_interval: 100ms, timeout: 80ms, backoff_min: 10ms, backoff_max: 40ms}
- {id: steady, profile: toilet_controller, transport: tcp, address: %q, unit_id: 1, poll_interval: 100ms, timeout: 80ms}
`, flaky.Addr(), steady.Addr()))

	// The flaky device's loop panics on its 3rd and 6th polls.
	var polls atomic.Int32
	reset := modbus.SetLoopHook(func(device string) {
		if device != "flaky" {
			return
		}
		if n := polls.Add(1); n == 3 || n == 6 {
			panic(fmt.Sprintf("injected fault on poll %d", n))
		}
	})
	defer reset()

	em := &collector{}
	watch := &loopLog{}
	reg := prometheus.NewRegistry()
	runWith(t, cfg, em, modbus.Options{Registerer: reg, Loops: watch})

	testenv.Eventually(t, 20*time.Second, "two restarts and readings after them", func() bool {
		return metric(t, reg, "sanigate_modbus_loop_restarts_total", "device", "flaky", "reason", "panic") == 2 &&
			polls.Load() >= 10 && len(em.readings("flaky")) >= 7
	})
	if got := metric(t, reg, "sanigate_modbus_loop_restarts_total", "device", "steady"); got != 0 {
		t.Errorf("steady device restarts: got %v, want 0", got)
	}
	failed, running := watch.snapshot()
	if strings.Join(failed, ",") != "flaky/panic,flaky/panic" {
		t.Errorf("failures reported: got %v, want two flaky/panic", failed)
	}
	if running["flaky"] != 3 || running["steady"] != 1 {
		t.Errorf("loop starts: got %v, want flaky 3, steady 1", running)
	}
	// Readings of the flaky device after its last restart are fresh ones.
	rs := em.readings("flaky")
	if last := rs[len(rs)-1]; time.Since(last.Time) > 10*time.Second {
		t.Errorf("last flaky reading at %v: polling did not continue", last.Time)
	}
	if len(em.readings("steady")) == 0 {
		t.Error("no reading from the steady device")
	}
}

// Run can be called again after it returned, so a supervisor can restart the
// poller; after Close it cannot.
func TestPollerRunsAgain(t *testing.T) {
	sim := startSim(t, "toilet_controller", modbussim.Options{Seed: 5, Step: -1})
	cfg := parse(t, fmt.Sprintf("devices:\n- {id: dev, profile: toilet_controller, transport: tcp, address: %q, unit_id: 1, poll_interval: 100ms, timeout: 80ms}\n", sim.Addr()))
	em := &collector{}
	p, err := modbus.NewPoller(cfg, em, modbus.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		want := 3 * round
		testenv.Eventually(t, 20*time.Second, fmt.Sprintf("%d readings in run %d", want, round), func() bool {
			return len(em.readings("dev")) >= want
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", round, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != modbus.ErrClosed {
		t.Errorf("Run after Close: got %v, want ErrClosed", err)
	}
}
