package cases

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

const maxDeviceBody = 16 << 10

// AddDeviceRequest is the body of POST /api/v1/devices.
type AddDeviceRequest struct {
	ID         string   `json:"id"`
	Kind       string   `json:"kind"`
	Category   string   `json:"category"`
	Contractor string   `json:"contractor"`
	District   string   `json:"district"`
	CapacityKG float64  `json:"capacity_kg"`
	Class      int      `json:"class"`
	Interval   string   `json:"interval"`
	Transport  string   `json:"transport"`
	Lat        *float64 `json:"lat"`
	Lon        *float64 `json:"lon"`
}

// Device returns the registration the request asks for.
func (q AddDeviceRequest) Device() (fleet.Device, error) {
	d := fleet.Device{ID: q.ID, Kind: q.Kind, Category: q.Category, Contractor: q.Contractor, District: q.District,
		CapacityKG: q.CapacityKG, Class: q.Class, Transport: q.Transport, Lat: q.Lat, Lon: q.Lon}
	if q.Interval != "" {
		iv, err := time.ParseDuration(q.Interval)
		if err != nil {
			return d, fmt.Errorf("%w: interval %q is not a duration (use for example 30s, 5m)", ErrBadRequest, truncate(q.Interval, 20))
		}
		d.Interval = fleet.Duration(iv)
	}
	return d, nil
}

// RotateRequest is the optional body of POST /api/v1/devices/{id}/rotate.
type RotateRequest struct {
	// Grace is how long the old secret stays valid ("24h"; "0s" ends it at
	// once); empty: the gateway's default.
	Grace string `json:"grace"`
}

// Admin wraps h so that only an administrator's token reaches it: 401
// without a valid token, 403 for a token without admin: true. The gateway
// mounts its own administration routes (configuration reload) with it.
func (s *Service) Admin(h func(w http.ResponseWriter, r *http.Request, who Actor)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := s.r().tokens.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sanigate"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required", nil)
			return
		}
		if !who.Admin {
			writeError(w, http.StatusForbidden, "forbidden", "an administrator's token (admin: true) is required", nil)
			return
		}
		h(w, r, who)
	})
}

// readBody reads a small request body whole.
func readBody(r *http.Request, limit int) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if len(body) > limit {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrBadRequest, limit)
	}
	return body, nil
}

// handleAddDevice serves POST /api/v1/devices: 201 with the device and its
// secret, shown this once.
func (s *Service) handleAddDevice(w http.ResponseWriter, r *http.Request, who Actor) {
	body, err := readBody(r, maxDeviceBody)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	var req AddDeviceRequest
	if err := decodeStrict("body", body, &req); err != nil {
		s.failDevice(w, err)
		return
	}
	d, err := req.Device()
	if err != nil {
		s.failDevice(w, err)
		return
	}
	secret, err := s.AddDevice(r.Context(), s.fleetCfg, d)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	s.log.Info("device added through the API", "device", d.ID, "by", who.Name)
	s.registryChanged()
	reg, err := s.RegisteredDevice(r.Context(), d.ID)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"device": reg, "secret": secret})
}

// handleDisableDevice serves POST /api/v1/devices/{id}/disable.
func (s *Service) handleDisableDevice(w http.ResponseWriter, r *http.Request, who Actor) {
	id := r.PathValue("id")
	if err := s.SetDeviceDisabled(r.Context(), id, true); err != nil {
		s.failDevice(w, err)
		return
	}
	s.log.Info("device disabled through the API", "device", id, "by", who.Name)
	s.registryChanged()
	reg, err := s.RegisteredDevice(r.Context(), id)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device": reg})
}

// handleRotateDevice serves POST /api/v1/devices/{id}/rotate: the new
// secret, shown this once, and until when the old one is accepted.
func (s *Service) handleRotateDevice(w http.ResponseWriter, r *http.Request, who Actor) {
	body, err := readBody(r, maxDeviceBody)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	grace := s.rotateGrace
	if len(body) > 0 {
		var req RotateRequest
		if err := decodeStrict("body", body, &req); err != nil {
			s.failDevice(w, err)
			return
		}
		if req.Grace != "" {
			if grace, err = time.ParseDuration(req.Grace); err != nil || grace < 0 || grace > 90*24*time.Hour {
				s.failDevice(w, fmt.Errorf("%w: grace %q must be a duration between 0s and 2160h", ErrBadRequest, truncate(req.Grace, 20)))
				return
			}
		}
	}
	id := r.PathValue("id")
	secret, until, err := s.RotateDevice(r.Context(), id, grace)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	s.log.Info("device secret rotated through the API", "device", id, "by", who.Name)
	s.registryChanged()
	out := map[string]any{"device": id, "secret": secret}
	if !until.IsZero() {
		out["previous_secret_until"] = until
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRemoveDevice serves DELETE /api/v1/devices/{id}: a device the
// configuration file lists is handed back to it (its entry in the file
// applies again), any other is deleted.
func (s *Service) handleRemoveDevice(w http.ResponseWriter, r *http.Request, who Actor) {
	id := r.PathValue("id")
	back, err := s.RemoveDevice(r.Context(), id)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	s.log.Info("device removed from the registry through the API", "device", id, "back_to_file", back, "by", who.Name)
	s.registryChanged()
	if !back {
		writeJSON(w, http.StatusOK, map[string]any{"device": id, "removed": true})
		return
	}
	reg, err := s.RegisteredDevice(r.Context(), id)
	if err != nil {
		s.failDevice(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"device": reg, "removed": false})
}

// handleRegistry serves GET /api/v1/admin/devices: every row of the device
// registry, disabled ones included, without secrets or hashes.
func (s *Service) handleRegistry(w http.ResponseWriter, r *http.Request, who Actor) {
	ds, version, err := s.RegisteredDevices(r.Context())
	if err != nil {
		s.failDevice(w, err)
		return
	}
	if ds == nil {
		ds = []RegisteredDevice{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": ds, "version": version})
}

// failDevice answers like fail, naming a device rather than a case.
func (s *Service) failDevice(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "device not found", nil)
		return
	}
	s.fail(w, err)
}

// registryChanged tells the gateway that the device registry changed here,
// so it applies the change at once rather than at its next poll.
func (s *Service) registryChanged() {
	if s.onRegistry != nil {
		s.onRegistry()
	}
}
