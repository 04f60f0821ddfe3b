package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrCorrupt marks a component's error as corrupted state: the supervisor
// does not restart it (it would fail the same way), reports it down in
// /readyz until the operator acts, and logs it as an error.
var ErrCorrupt = errors.New("corrupted state")

// A component is a long-running part of the gateway (the InfluxDB writer,
// the detectors, the case workers, the Modbus poller, the HTTP server). Run
// blocks until ctx ends, then returns nil; a non-nil return before that is a
// failure, after which the supervisor runs it again.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// supervisor runs components, restarts a failed one with exponential backoff
// and jitter, counts restarts by component and reason, and knows which are
// down. It is the gateway's run group: Close stops its members one by one in
// the order the gateway gives, each waited for.
type supervisor struct {
	log        *slog.Logger
	restarts   *prometheus.CounterVec
	up         *prometheus.GaugeVec
	backoffMin time.Duration
	backoffMax time.Duration
	// healthyAfter is how long a component must run for its backoff to start
	// from backoffMin again.
	healthyAfter time.Duration

	mu      sync.Mutex
	members map[string]*member
	down    map[string]string // component -> why
}

type member struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newSupervisor(reg prometheus.Registerer, log *slog.Logger) *supervisor {
	s := &supervisor{
		log: log, backoffMin: 500 * time.Millisecond, backoffMax: 30 * time.Second, healthyAfter: time.Minute,
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sanigate_component_restarts_total",
			Help: "Restarts of a failed gateway component (writer, detectors, cases, modbus, http), by component and reason.",
		}, []string{"component", "reason"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sanigate_component_up", Help: "1 while a gateway component runs, 0 while it is down.",
		}, []string{"component"}),
		members: map[string]*member{},
		down:    map[string]string{},
	}
	reg.MustRegister(s.restarts, s.up)
	return s
}

// start runs c in its own goroutine until stop(c.name) or a corrupted state.
func (s *supervisor) start(c component) {
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	if _, dup := s.members[c.name]; dup {
		s.mu.Unlock()
		panic("gateway: component " + c.name + " started twice")
	}
	s.members[c.name] = m
	s.mu.Unlock()
	go func() {
		defer close(m.done)
		s.loop(ctx, c)
	}()
}

func (s *supervisor) loop(ctx context.Context, c component) {
	log := s.log.With("component", c.name)
	wait := s.backoffMin
	for {
		s.setDown(c.name, "")
		began := time.Now()
		err := runOnce(ctx, c)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("returned before it was stopped")
		}
		reason := reasonOf(err)
		if errors.Is(err, ErrCorrupt) {
			s.setDown(c.name, err.Error())
			log.Error("component stopped for good: corrupted state needs the operator", "error", err)
			return
		}
		if time.Since(began) > s.healthyAfter {
			wait = s.backoffMin
		}
		s.setDown(c.name, fmt.Sprintf("%s (restarting in %s)", err, wait.Round(time.Millisecond)))
		s.restarts.WithLabelValues(c.name, reason).Inc()
		log.Error("component failed; restarting", "reason", reason, "error", err, "in", wait)
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, s.backoffMax)
	}
}

// runOnce runs c once, turning a panic into an error.
func runOnce(ctx context.Context, c component) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return c.run(ctx)
}

var errPanic = errors.New("panic")

// reasonOf names a failure for the restarts counter, from a small fixed set.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, errPanic):
		return "panic"
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return "too_many_open_files"
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return "disk_full"
	case errors.Is(err, os.ErrPermission):
		return "permission"
	case errors.Is(err, ErrCorrupt):
		return "corrupt"
	}
	return "error"
}

func (s *supervisor) setDown(name, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if why == "" {
		delete(s.down, name)
		s.up.WithLabelValues(name).Set(1)
		return
	}
	s.down[name] = why
	s.up.WithLabelValues(name).Set(0)
}

// forget drops a component that no longer exists (the loop of a Modbus
// device no longer polled): its down state and its series.
func (s *supervisor) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.down, name)
	s.up.DeleteLabelValues(name)
	s.restarts.DeletePartialMatch(prometheus.Labels{"component": name})
}

// Down lists the components that are down, with why, sorted by name.
func (s *supervisor) Down() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.down))
	for name, why := range s.down {
		out = append(out, name+" down: "+why)
	}
	sort.Strings(out)
	return out
}

// stop cancels the named component and waits for it to return; it does
// nothing for a name not running.
func (s *supervisor) stop(name string) {
	s.mu.Lock()
	m := s.members[name]
	delete(s.members, name)
	s.mu.Unlock()
	if m == nil {
		return
	}
	m.cancel()
	<-m.done
	s.mu.Lock()
	delete(s.down, name)
	s.mu.Unlock()
}

// running reports whether a component of that name was started and not stopped.
func (s *supervisor) running(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members[name] != nil
}
