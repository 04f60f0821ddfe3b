package console

import (
	"strconv"
	"sync"
	"time"
)

// Login throttling: after maxFails failed logins for one user name or one
// address within failWindow, further attempts for it are refused until
// failWindow has passed since the last failure.
const (
	maxFails   = 5
	maxIPFails = 20
	failWindow = 15 * time.Minute
	maxEntries = 100_000
)

type failures struct {
	n    int
	last time.Time
}

type throttle struct {
	mu  sync.Mutex
	m   map[string]*failures
	now func() time.Time
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{m: map[string]*failures{}, now: now}
}

func limitOf(key string) int {
	if len(key) > 3 && key[:3] == "ip:" {
		return maxIPFails
	}
	return maxFails
}

// blocked returns how long the longest block among keys still lasts.
func (t *throttle) blocked(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range keys {
		f := t.m[k]
		if f == nil {
			continue
		}
		left := f.last.Add(failWindow).Sub(now)
		if left <= 0 {
			delete(t.m, k)
			continue
		}
		if f.n >= limitOf(k) && left > wait {
			wait = left
		}
	}
	return wait
}

func (t *throttle) fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) >= maxEntries {
		for k, f := range t.m {
			if now.Sub(f.last) > failWindow {
				delete(t.m, k)
			}
		}
	}
	for _, k := range keys {
		f := t.m[k]
		if f == nil || now.Sub(f.last) > failWindow {
			if len(t.m) >= maxEntries {
				continue // full of live entries: the address limits still hold
			}
			f = &failures{}
			t.m[k] = f
		}
		f.n++
		f.last = now
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

func itoa(n int) string { return strconv.Itoa(n) }
