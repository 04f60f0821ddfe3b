package broker

import (
	"net"
	"sync"
	"time"
)

// LoginLimits throttle failed logins. After the allowed number of failures,
// each further failure of a device id (or from a source address) closes it to
// logins for a backoff that doubles up to MaxBackoff; while closed, a CONNECT
// is refused at once, without verifying its password, and counted. A success
// clears the device's failures; an address's failures are forgotten only once
// it has stayed quiet for MaxBackoff, so that one good device cannot launder
// another's guesses.
type LoginLimits struct {
	DeviceFailures  int           // failures per device id before backoff; default 5
	AddressFailures int           // failures per source address before backoff; default 20 (many devices share a carrier's NAT)
	Backoff         time.Duration // first backoff; default 1s
	MaxBackoff      time.Duration // longest backoff; default 5 min
	MaxTracked      int           // ids and addresses remembered at most; default 100,000
}

func (l LoginLimits) withDefaults() LoginLimits {
	if l.DeviceFailures <= 0 {
		l.DeviceFailures = 5
	}
	if l.AddressFailures <= 0 {
		l.AddressFailures = 20
	}
	if l.Backoff <= 0 {
		l.Backoff = time.Second
	}
	if l.MaxBackoff < l.Backoff {
		l.MaxBackoff = max(5*time.Minute, l.Backoff)
	}
	if l.MaxTracked <= 0 {
		l.MaxTracked = 100_000
	}
	return l
}

// loginThrottle counts failed logins per device id and per source address.
type loginThrottle struct {
	lim LoginLimits
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*strikes // "d" + device id, or "a" + address
}

type strikes struct {
	n     int
	until time.Time // logins refused before this time
	last  time.Time // last failure
}

func newLoginThrottle(l LoginLimits) *loginThrottle {
	return &loginThrottle{lim: l.withDefaults(), now: time.Now, entries: map[string]*strikes{}}
}

// blocked tells whether a login of device from addr must be refused now, and
// by which count ("device" or "address").
func (t *loginThrottle) blocked(device, addr string) string {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.entries["d"+device]; s != nil && now.Before(s.until) {
		return "device"
	}
	if s := t.entries["a"+addr]; s != nil && now.Before(s.until) {
		return "address"
	}
	return ""
}

// failed counts a failed login.
func (t *loginThrottle) failed(device, addr string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.strike("d"+device, t.lim.DeviceFailures, now)
	t.strike("a"+addr, t.lim.AddressFailures, now)
}

// succeeded clears the device's failures.
func (t *loginThrottle) succeeded(device string) {
	t.mu.Lock()
	delete(t.entries, "d"+device)
	t.mu.Unlock()
}

func (t *loginThrottle) strike(key string, free int, now time.Time) {
	s := t.entries[key]
	if s != nil && now.Sub(s.last) > t.lim.MaxBackoff && !now.Before(s.until) {
		s.n = 0 // quiet long enough: start afresh
	}
	if s == nil {
		if len(t.entries) >= t.lim.MaxTracked && !t.prune(now) {
			return
		}
		s = &strikes{}
		t.entries[key] = s
	}
	s.n++
	s.last = now
	if over := s.n - free; over > 0 {
		d := t.lim.Backoff << min(over-1, 30)
		if d <= 0 || d > t.lim.MaxBackoff {
			d = t.lim.MaxBackoff
		}
		s.until = now.Add(d)
	}
}

// prune forgets entries that are neither closed nor recent; it reports
// whether room was made.
func (t *loginThrottle) prune(now time.Time) bool {
	for k, s := range t.entries {
		if !now.Before(s.until) && now.Sub(s.last) > t.lim.MaxBackoff {
			delete(t.entries, k)
		}
	}
	return len(t.entries) < t.lim.MaxTracked
}

// hostOf is the address part of a remote "host:port".
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// login checks a device's credentials unless its id or source address is
// closed to logins, and counts the outcome.
func (h *hook) login(device, password, remote string) bool {
	addr := hostOf(remote)
	if who := h.b.logins.blocked(device, addr); who != "" {
		h.b.metrics.authFailures.WithLabelValues("throttled").Inc()
		h.b.metrics.loginsThrottled.WithLabelValues(who).Inc()
		h.b.logLimited("throttled", "mqtt login refused while throttled", "device", device, "remote", remote, "by", who)
		return false
	}
	if !h.auth.Authenticate(device, password) {
		h.b.logins.failed(device, addr)
		h.b.metrics.authFailures.WithLabelValues("bad_credentials").Inc()
		h.b.logLimited("auth", "mqtt authentication refused", "device", device, "remote", remote)
		return false
	}
	h.b.logins.succeeded(device)
	return true
}
