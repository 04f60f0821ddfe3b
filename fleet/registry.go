package fleet

// Registry answers questions about registered devices. It is safe for
// concurrent use; devices are fixed when it is built.
type Registry struct {
	devices map[string]*Device
	auth    *verifier
}

// NewRegistry indexes devices by id. Later duplicates are ignored (Load
// refuses them).
func NewRegistry(devices []Device) *Registry {
	r := &Registry{devices: make(map[string]*Device, len(devices))}
	for i := range devices {
		d := &devices[i]
		if _, dup := r.devices[d.ID]; !dup {
			r.devices[d.ID] = d
		}
	}
	r.auth = newVerifier(r.devices, 0)
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

// Authenticate checks a device's password against its stored hash. A
// password that passed once is remembered (by a keyed digest of the hash, the
// id and the password), so that reconnect storms do not pay for bcrypt again;
// slow verifications run at most GOMAXPROCS at once, in arrival order; an
// unknown id costs what a known one with a wrong password costs.
func (r *Registry) Authenticate(id, password string) bool {
	hash := ""
	if d, ok := r.devices[id]; ok {
		hash = d.PasswordHash
	}
	return r.auth.check(id, hash, password)
}
