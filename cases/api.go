package cases

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sanigate/sanigate/internal/strictjson"
)

// DeviceInfo describes a registered device for /api/v1/devices.
type DeviceInfo struct {
	ID         string  `json:"id"`
	Kind       string  `json:"kind"`
	District   string  `json:"district,omitempty"`
	Contractor string  `json:"contractor,omitempty"`
	Category   string  `json:"category,omitempty"`
	Site       string  `json:"site,omitempty"`
	Lat        float64 `json:"lat,omitempty"`
	Lon        float64 `json:"lon,omitempty"`
	HasPos     bool    `json:"has_pos"`
	Online     bool    `json:"online"`
}

// Reading is a device's last reading.
type Reading struct {
	Time   time.Time          `json:"time"`
	Fields map[string]float64 `json:"fields"`
	Text   map[string]string  `json:"text,omitempty"`
}

// DeviceDirectory is what the API needs to answer for devices; the gateway
// fills it from the fleet registry and the telemetry pipeline. Its methods
// are called from HTTP handlers concurrently and must not block for long.
type DeviceDirectory interface {
	// Devices lists every registered device.
	Devices() []DeviceInfo
	// LastReading returns the device's latest reading, if it has sent one.
	LastReading(id string) (Reading, bool)
}

// route is one API endpoint; the OpenAPI test walks the same list.
type route struct {
	method, path string
	handle       func(s *Service, w http.ResponseWriter, r *http.Request, who Actor)
}

var routes = []route{
	{"GET", "/api/v1/me", (*Service).handleMe},
	{"GET", "/api/v1/cases", (*Service).handleList},
	{"GET", "/api/v1/cases/{id}", (*Service).handleGet},
	{"GET", "/api/v1/cases/{id}/deliveries", (*Service).handleDeliveries},
	{"POST", "/api/v1/cases/{id}/{action}", (*Service).handleAction},
	{"GET", "/api/v1/units", (*Service).handleUnits},
	{"GET", "/api/v1/devices", (*Service).handleDevices},
	{"GET", "/api/v1/devices/{id}", (*Service).handleDevice},
	{"GET", "/api/v1/devices/{id}/commands", (*Service).handleCommands},
	{"POST", "/api/v1/devices/{id}/commands", (*Service).handleSendCommand},
	{"GET", "/api/v1/kpis", (*Service).handleKPIs},
	{"POST", "/api/v1/devices", admin((*Service).handleAddDevice)},
	{"POST", "/api/v1/devices/{id}/disable", admin((*Service).handleDisableDevice)},
	{"POST", "/api/v1/devices/{id}/rotate", admin((*Service).handleRotateDevice)},
	{"DELETE", "/api/v1/devices/{id}", admin((*Service).handleRemoveDevice)},
	{"GET", "/api/v1/admin/devices", admin((*Service).handleRegistry)},
}

// admin limits a route to administrators' tokens (403 for the others).
func admin(h func(*Service, http.ResponseWriter, *http.Request, Actor)) func(*Service, http.ResponseWriter, *http.Request, Actor) {
	return func(s *Service, w http.ResponseWriter, r *http.Request, who Actor) {
		if !who.Admin {
			writeError(w, http.StatusForbidden, "forbidden", "an administrator's token (admin: true) is required", nil)
			return
		}
		h(s, w, r, who)
	}
}

// Handler serves the API under /api/v1. Every request needs a bearer token
// of the configuration (401 otherwise); a case the token may not see is
// answered 404, like one that does not exist. Mount it on the gateway's mux
// at /api/v1/.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		rt := rt
		mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			who, ok := s.r().tokens.authenticate(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sanigate"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required", nil)
				return
			}
			rt.handle(s, w, r, who)
		})
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint", nil)
	})
	return mux
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error   string   `json:"error"`
	Code    string   `json:"code"`
	State   State    `json:"state,omitempty"`
	Action  Action   `json:"action,omitempty"`
	Allowed []Action `json:"allowed,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string, te *TransitionError) {
	e := apiError{Error: msg, Code: code}
	if te != nil {
		e.State, e.Action, e.Allowed = te.State, te.Action, te.Allowed
	}
	writeJSON(w, status, e)
}

// fail maps an error to its answer.
func (s *Service) fail(w http.ResponseWriter, err error) {
	var te *TransitionError
	switch {
	case errors.As(err, &te):
		writeError(w, http.StatusConflict, "invalid_transition", te.Error(), te)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "case not found", nil)
	case errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", err.Error(), nil)
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error(), nil)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error(), nil)
	default:
		s.log.Error("case API request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error", nil)
	}
}

func (s *Service) handleMe(w http.ResponseWriter, r *http.Request, who Actor) {
	writeJSON(w, http.StatusOK, who)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: case id %q is not a number", ErrBadRequest, r.PathValue("id"))
	}
	return id, nil
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s=%q is not an RFC 3339 time", ErrBadRequest, name, v)
	}
	return t, nil
}

func parseBool(name, v string) (*bool, error) {
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s=%q is not true or false", ErrBadRequest, name, v)
	}
	return &b, nil
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request, who Actor) {
	q := r.URL.Query()
	var f Filter
	var err error
	for _, st := range q["state"] {
		for _, x := range strings.Split(st, ",") {
			if x == "" {
				continue
			}
			if !containsState(States, State(x)) {
				s.fail(w, fmt.Errorf("%w: state=%q is not a state", ErrBadRequest, x))
				return
			}
			f.State = append(f.State, State(x))
		}
	}
	f.Type, f.District, f.Unit = q.Get("type"), q.Get("district"), q.Get("unit")
	if f.Overdue, err = parseBool("overdue", q.Get("overdue")); err != nil {
		s.fail(w, err)
		return
	}
	if f.Open, err = parseBool("open", q.Get("open")); err != nil {
		s.fail(w, err)
		return
	}
	if f.From, err = parseTime("from", q.Get("from")); err != nil {
		s.fail(w, err)
		return
	}
	if f.To, err = parseTime("to", q.Get("to")); err != nil {
		s.fail(w, err)
		return
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			s.fail(w, fmt.Errorf("%w: limit=%q is not a number from 1 to 1000", ErrBadRequest, v))
			return
		}
	}
	if v := q.Get("cursor"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before <= 0 {
			s.fail(w, fmt.Errorf("%w: cursor=%q is not a cursor from next_cursor", ErrBadRequest, v))
			return
		}
	}
	page, err := s.List(r.Context(), who, f)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func containsState(list []State, s State) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request, who Actor) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	c, err := s.Get(r.Context(), who, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Service) handleDeliveries(w http.ResponseWriter, r *http.Request, who Actor) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	if _, err := s.Get(r.Context(), who, id); err != nil {
		s.fail(w, err)
		return
	}
	ds, err := s.Deliveries(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	if ds == nil {
		ds = []Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}

func (s *Service) handleAction(w http.ResponseWriter, r *http.Request, who Actor) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	var req ActionRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		s.fail(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.fail(w, fmt.Errorf("%w: body: %v", ErrBadRequest, err))
			return
		}
		if dec.More() {
			s.fail(w, fmt.Errorf("%w: body: data after the JSON object", ErrBadRequest))
			return
		}
		if k, dup := strictjson.DuplicateKey(body); dup {
			s.fail(w, fmt.Errorf("%w: body: key %q appears twice", ErrBadRequest, k))
			return
		}
	}
	req.Action = Action(r.PathValue("action"))
	c, err := s.Act(r.Context(), who, id, req)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// UnitInfo describes a unit for /api/v1/units; channels are named, never
// their secrets.
type UnitInfo struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Webhook    bool   `json:"webhook"`
	MQTT       bool   `json:"mqtt"`
	Escalation string `json:"escalation,omitempty"`
}

func (s *Service) handleUnits(w http.ResponseWriter, r *http.Request, who Actor) {
	out := []UnitInfo{}
	for _, u := range s.r().cfg.Units {
		out = append(out, UnitInfo{ID: u.ID, Name: u.Name, Webhook: u.WebhookURL != "", MQTT: u.MQTTTopic != "", Escalation: s.escalation(u.ID)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"units": out})
}

// DeviceView is a device with its last reading.
type DeviceView struct {
	DeviceInfo
	LastReading *Reading `json:"last_reading,omitempty"`
}

// seesDevice: the city sees every device, a district those placed in it, a
// unit those of its contractor.
func (s *Service) seesDevice(who Actor, d DeviceInfo) bool {
	switch who.Role {
	case RoleCity:
		return true
	case RoleDistrict:
		return d.District == who.District
	case RoleUnit:
		u := s.r().units[who.Unit]
		return d.Contractor != "" && (d.Contractor == u.Contractor || d.Contractor == u.ID)
	}
	return false
}

func (s *Service) view(d DeviceInfo) DeviceView {
	v := DeviceView{DeviceInfo: d}
	if r, ok := s.devices.LastReading(d.ID); ok {
		if r.Fields == nil {
			r.Fields = map[string]float64{}
		}
		v.LastReading = &r
	}
	return v
}

func (s *Service) handleDevices(w http.ResponseWriter, r *http.Request, who Actor) {
	out := []DeviceView{}
	if s.devices != nil {
		q := r.URL.Query()
		for _, d := range s.devices.Devices() {
			if !s.seesDevice(who, d) || (q.Get("kind") != "" && d.Kind != q.Get("kind")) ||
				(q.Get("district") != "" && d.District != q.Get("district")) {
				continue
			}
			out = append(out, s.view(d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (s *Service) handleDevice(w http.ResponseWriter, r *http.Request, who Actor) {
	id := r.PathValue("id")
	if s.devices != nil {
		for _, d := range s.devices.Devices() {
			if d.ID == id && s.seesDevice(who, d) {
				writeJSON(w, http.StatusOK, s.view(d))
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, "not_found", "device not found", nil)
}

func (s *Service) handleKPIs(w http.ResponseWriter, r *http.Request, who Actor) {
	q := r.URL.Query()
	var kq KPIQuery
	var err error
	if kq.From, err = parseDay(q.Get("from"), s); err != nil {
		s.fail(w, err)
		return
	}
	if kq.To, err = parseDay(q.Get("to"), s); err != nil {
		s.fail(w, err)
		return
	}
	if !kq.From.IsZero() && kq.To.IsZero() {
		kq.To = s.now()
	}
	if kq.From.IsZero() && !kq.To.IsZero() {
		s.fail(w, fmt.Errorf("%w: to without from", ErrBadRequest))
		return
	}
	kq.By = q.Get("by")
	switch q.Get("period") {
	case "", "range":
	case "day":
		kq.Daily = true
	default:
		s.fail(w, fmt.Errorf("%w: period=%q (day, range)", ErrBadRequest, q.Get("period")))
		return
	}
	rows, err := s.KPIs(r.Context(), who, kq)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kpis": rows})
}

// parseDay reads an RFC 3339 time or a date (midnight in the city zone).
func parseDay(v string, s *Service) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, s.loc); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is not a date (YYYY-MM-DD) or an RFC 3339 time", ErrBadRequest, v)
	}
	return t, nil
}

// DevicesFor lists the devices who may see, with their last readings, by id.
func (s *Service) DevicesFor(who Actor) []DeviceView {
	out := []DeviceView{}
	if s.devices == nil {
		return out
	}
	for _, d := range s.devices.Devices() {
		if s.seesDevice(who, d) {
			out = append(out, s.view(d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
