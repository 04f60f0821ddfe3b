package fleet

import (
	"slices"
	"sync/atomic"
	"time"
)

// Registry answers questions about registered devices. It is safe for
// concurrent use. Its device set is replaced whole by Replace (a
// configuration reload, a change in the device registry of the case store);
// readers see either the old set or the new one, never a mix.
type Registry struct {
	snap atomic.Pointer[map[string]*Device]
	auth *verifier
	now  func() time.Time
}

// NewRegistry indexes devices by id. Later duplicates are ignored (Load
// refuses them).
func NewRegistry(devices []Device) *Registry {
	r := &Registry{now: time.Now}
	m := index(devices)
	r.snap.Store(&m)
	r.auth = newVerifier(m, 0)
	return r
}

func index(devices []Device) map[string]*Device {
	m := make(map[string]*Device, len(devices))
	for i := range devices {
		d := devices[i] // a copy: the registry's devices never change under a reader
		if _, dup := m[d.ID]; !dup {
			m[d.ID] = &d
		}
	}
	return m
}

// Change is what a Replace changed, by device id (sorted).
type Change struct {
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Changed lists devices whose registration differs (attributes or
	// credentials); their connections are kept.
	Changed []string `json:"changed,omitempty"`
}

// Empty reports whether nothing changed.
func (c Change) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// Replace swaps in a new device set at once and says what changed. A device
// left out (removed, or disabled in the device registry) is unknown from
// the next call on; cutting its connections is the caller's business.
func (r *Registry) Replace(devices []Device) Change {
	next := index(devices)
	old := *r.snap.Load()
	var c Change
	for id, d := range next {
		o, ok := old[id]
		switch {
		case !ok:
			c.Added = append(c.Added, id)
		case !sameDevice(o, d):
			c.Changed = append(c.Changed, id)
		}
	}
	for id := range old {
		if _, ok := next[id]; !ok {
			c.Removed = append(c.Removed, id)
		}
	}
	slices.Sort(c.Added)
	slices.Sort(c.Removed)
	slices.Sort(c.Changed)
	r.snap.Store(&next)
	return c
}

func sameDevice(a, b *Device) bool {
	eqf := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	a2, b2 := *a, *b
	a2.Lat, a2.Lon, b2.Lat, b2.Lon = nil, nil, nil, nil
	return a2 == b2 && eqf(a.Lat, b.Lat) && eqf(a.Lon, b.Lon)
}

// Device returns the device with the given id.
func (r *Registry) Device(id string) (*Device, bool) {
	d, ok := (*r.snap.Load())[id]
	return d, ok
}

// Len is the number of registered devices.
func (r *Registry) Len() int { return len(*r.snap.Load()) }

// Devices returns every registered device, in no particular order.
func (r *Registry) Devices() []*Device {
	m := *r.snap.Load()
	out := make([]*Device, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	return out
}

// Authenticate checks a device's password against its stored hash, or,
// during a rotation's grace period, against the hash it replaced. A
// password that passed once is remembered (by a keyed digest of the hash,
// the id and the password), so that reconnect storms do not pay for bcrypt
// again; slow verifications run at most GOMAXPROCS at once, in arrival
// order; an unknown id costs what a known one with a wrong password costs.
func (r *Registry) Authenticate(id, password string) bool {
	hash := ""
	d, ok := r.Device(id)
	if ok {
		hash = d.PasswordHash
	}
	if r.auth.check(id, hash, password) {
		return true
	}
	// The digest cached for the previous hash never matches the current
	// one, so once the grace period ends the old secret fails for good.
	return ok && d.PreviousPasswordHash != "" && r.now().Before(d.PreviousUntil) &&
		r.auth.check(id, d.PreviousPasswordHash, password)
}
