package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// sessions counts each device's sessions, connected or kept for a later
// reconnect, by client id: with client ids "{id}-...", a device could
// otherwise open any number of sessions that outlive their connections.
type sessions struct {
	mu  sync.Mutex
	ids map[string]map[string]struct{} // device -> client ids
}

func (s *sessions) add(device, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]map[string]struct{}{}
	}
	m := s.ids[device]
	if m == nil {
		m = map[string]struct{}{}
		s.ids[device] = m
	}
	m[id] = struct{}{}
}

func (s *sessions) remove(device, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.ids[device]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(s.ids, device)
		}
	}
}

// reserve counts session id of device unless that would make more than max
// (max <= 0: no cap); it reports whether the session may be opened. It is
// the atomic form of full then add, for CONNECTs of one device that race.
func (s *sessions) reserve(device, id string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]map[string]struct{}{}
	}
	m := s.ids[device]
	if _, ok := m[id]; ok {
		return true
	}
	if max > 0 && len(m) >= max {
		return false
	}
	if m == nil {
		m = map[string]struct{}{}
		s.ids[device] = m
	}
	m[id] = struct{}{}
	return true
}

// full reports whether device holds max sessions already, none of them id.
func (s *sessions) full(device, id string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.ids[device]
	if _, ok := m[id]; ok {
		return false
	}
	return max > 0 && len(m) >= max
}

// checkSessions refuses a CONNECT that would open one session too many for
// its device (MQTT 5: 0x97 quota exceeded; 3.1.1: 0x03 server unavailable).
func (h *hook) checkSessions(cl *mqtt.Client, device string) error {
	if !h.sessions.full(device, cl.ID, h.maxSessions) {
		return nil
	}
	h.b.metrics.authFailures.WithLabelValues("too_many_sessions").Inc()
	h.b.logLimited("sessions", "mqtt device holds too many sessions; refused", "device", device, "client", cl.ID, "max", h.maxSessions)
	code := packets.ErrQuotaExceeded
	if cl.Properties.ProtocolVersion < 5 {
		code = packets.ErrServerUnavailable
	}
	return h.refuseConnect(cl, code)
}

// OnClientExpired forgets a session mochi removes after its expiry.
func (h *hook) OnClientExpired(cl *mqtt.Client) {
	defer h.recovered("expired", cl)
	h.sessions.remove(string(cl.Properties.Username), cl.ID)
}
