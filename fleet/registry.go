package fleet

import (
	"crypto/subtle"
	"sync"
)

// Registry answers questions about registered devices. It is safe for
// concurrent use; devices are fixed when it is built.
type Registry struct {
	devices map[string]*Device

	mu       sync.Mutex
	verified map[string][32]byte // device id -> digest of its last good password
}

// NewRegistry indexes devices by id. Later duplicates are ignored (Load
// refuses them).
func NewRegistry(devices []Device) *Registry {
	r := &Registry{devices: make(map[string]*Device, len(devices)), verified: map[string][32]byte{}}
	for i := range devices {
		d := &devices[i]
		if _, dup := r.devices[d.ID]; !dup {
			r.devices[d.ID] = d
		}
	}
	return r
}

// Device returns the device with the given id.
func (r *Registry) Device(id string) (*Device, bool) {
	d, ok := r.devices[id]
	return d, ok
}

// Len is the number of registered devices.
func (r *Registry) Len() int { return len(r.devices) }

// Devices returns every registered device, in no particular order.
func (r *Registry) Devices() []*Device {
	out := make([]*Device, 0, len(r.devices))
	for _, d := range r.devices {
		out = append(out, d)
	}
	return out
}

// Authenticate checks a device's password against its stored hash. A password
// that passed once is remembered by its SHA-256 digest, so that reconnect
// storms do not cost one bcrypt each.
func (r *Registry) Authenticate(id, password string) bool {
	d, ok := r.devices[id]
	if !ok {
		return false
	}
	digest := passwordDigest(id, password)
	r.mu.Lock()
	known, seen := r.verified[id]
	r.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(known[:], digest[:]) == 1 {
		return true
	}
	if VerifyPassword(d.PasswordHash, password) != nil {
		return false
	}
	r.mu.Lock()
	r.verified[id] = digest
	r.mu.Unlock()
	return true
}
