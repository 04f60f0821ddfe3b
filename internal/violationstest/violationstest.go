// Package violationstest holds what the tests of the detectors and of the
// scenarios share: the demo city's configuration, loaded once, and a Sink
// that keeps what it is given.
package violationstest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/violations"
)

var demo = sync.OnceValues(func() (*fleet.Config, error) {
	return fleet.Load(filepath.Join(testenv.RepoRoot(), "examples", "demo", "sanigate.yaml"))
})

// Demo returns the demo city's configuration (examples/demo), loaded once.
func Demo(t testing.TB) *fleet.Config {
	t.Helper()
	cfg, err := demo()
	if err != nil {
		t.Fatalf("load demo config: %v", err)
	}
	return cfg
}

// Collector is a violations.Sink that keeps what it is given; it is safe for
// concurrent use.
type Collector struct {
	mu        sync.Mutex
	all       []violations.Violation
	withdrawn []violations.Violation
}

// Raise keeps v.
func (c *Collector) Raise(_ context.Context, v violations.Violation) error {
	c.mu.Lock()
	c.all = append(c.all, v)
	c.mu.Unlock()
	return nil
}

// Withdraw takes back what was raised under v.Key, as a sink that files
// cases closes the case.
func (c *Collector) Withdraw(_ context.Context, v violations.Violation, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.all {
		if x.Key != v.Key {
			c.all[n] = x
			n++
		}
	}
	c.all = c.all[:n]
	c.withdrawn = append(c.withdrawn, v)
	return nil
}

// Withdrawn returns what was withdrawn, in order.
func (c *Collector) Withdrawn() []violations.Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]violations.Violation(nil), c.withdrawn...)
}

// List returns a copy of what was raised, in order.
func (c *Collector) List() []violations.Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]violations.Violation(nil), c.all...)
}
