package cases

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
)

const maxCommandBody = 16 << 10

// handleSendCommand serves POST /api/v1/devices/{id}/commands: 202 with the
// stored command (queued, or failed when the broker refused it).
func (s *Service) handleSendCommand(w http.ResponseWriter, r *http.Request, who Actor) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCommandBody+1))
	if err != nil {
		s.failCommand(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	if len(body) > maxCommandBody {
		s.failCommand(w, fmt.Errorf("%w: body over %d bytes", ErrBadRequest, maxCommandBody))
		return
	}
	// Who may command the device is checked before the body is read for
	// meaning: a unit learns nothing about parameters.
	if err := s.commandDevice(who, r.PathValue("id")); err != nil {
		s.failCommand(w, err)
		return
	}
	var req CommandRequest
	if err := decodeStrict("body", body, &req); err != nil {
		s.failCommand(w, err)
		return
	}
	c, err := s.SendCommand(r.Context(), who, r.PathValue("id"), req)
	if err != nil {
		s.failCommand(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, c)
}

// handleCommands serves GET /api/v1/devices/{id}/commands?limit=N.
func (s *Service) handleCommands(w http.ResponseWriter, r *http.Request, who Actor) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			s.failCommand(w, fmt.Errorf("%w: limit=%q must be between 1 and 500", ErrBadRequest, truncate(v, 20)))
			return
		}
		limit = n
	}
	cs, err := s.Commands(r.Context(), who, r.PathValue("id"), limit)
	if err != nil {
		s.failCommand(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": cs})
}

// failCommand answers like fail, but names the device rather than a case
// when nothing is found.
func (s *Service) failCommand(w http.ResponseWriter, err error) {
	if err == errNoDevice {
		writeError(w, http.StatusNotFound, "not_found", "device not found", nil)
		return
	}
	s.fail(w, err)
}
