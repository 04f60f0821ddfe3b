// Package cases turns violations into cases and carries them through the
// loop of the digital urban-management standard (GB/T 30428, CJ/T 315):
// file, dispatch to the responsible unit, handle, report back, verify and
// close, evaluate. It owns the case store (SQLite by default, PostgreSQL when
// several gateways share cases) and its migrations, the workflow, the merging
// of repeats, the dispatch table, deadlines in working or wall time and their
// escalation, the notification outbox (signed webhooks, MQTT topics of crew
// terminals), the KPIs, and the HTTP API with its access control.
//
// It knows neither MQTT nor Modbus: what it needs from the rest of the
// gateway it asks for through small interfaces (Publisher, PointWriter,
// DeviceDirectory) that the gateway fills.
package cases

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/violations"
)

// Publisher sends a message on the embedded MQTT broker; *broker.Broker
// fills it. Publish may be called from several goroutines at once and must
// not block for long; an error means the message was not taken and the
// outbox tries again later.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// PointWriter takes InfluxDB line protocol (one point per line, times in
// nanoseconds); the gateway routes it through its durable spool. WriteLines
// is called after the change it describes is committed, from API handlers
// and workers concurrently; an error is logged and counted, the case
// change stands.
type PointWriter interface {
	WriteLines(ctx context.Context, lines []byte) error
}

// Deps is what the service needs from the rest of the gateway. Every field
// is optional.
type Deps struct {
	// Calendar counts working time for deadlines with working_time: true
	// (default: 09:00-18:00, Monday to Friday, in Location).
	Calendar *fleet.Calendar
	// Location is the city's time zone: KPI days start at its midnight
	// (default: the calendar's, else Asia/Shanghai).
	Location *time.Location
	// Publisher delivers to units' MQTT topics; required when a unit has one.
	Publisher Publisher
	// Points receives case events and KPIs for InfluxDB.
	Points PointWriter
	// Devices answers /api/v1/devices.
	Devices DeviceDirectory
	// Registerer gets the case gauges and counters (default: a private registry).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Clock is the time source (default time.Now); tests move it.
	Clock func() time.Time
	// HTTPClient sends webhooks (default: a client with the outbox timeout).
	HTTPClient *http.Client
	// Dir anchors relative paths (the SQLite file, secret files): the
	// configuration file's folder.
	Dir string
	// Getenv reads secrets named by secret_env and dsn_env (default os.Getenv).
	Getenv func(string) string
	// Fleet gives the device kinds' default intervals to devices added
	// through the API (optional).
	Fleet *fleet.Config
	// OnRegistryChange, if set, is called after the API changed the device
	// registry (added, disabled or rotated a device), from the request's
	// goroutine.
	OnRegistryChange func()
	// RotateGrace is how long a rotated secret stays valid when the request
	// does not say (default 24h).
	RotateGrace time.Duration
}

// Service is the case service. Its methods are safe for concurrent use, and
// several services (in several gateways) may share one PostgreSQL store.
type Service struct {
	cfg         Config // store, outbox and check interval: fixed at Open
	st          *store
	live        atomic.Pointer[rules]
	fleetCfg    *fleet.Config
	fileDevices atomic.Pointer[[]fleet.Device] // the file's devices, as last synced
	onRegistry  func()
	rotateGrace time.Duration
	dir         string              // anchors secret files, for Reload
	getenv      func(string) string // reads secret_env, for Reload
	cal         *fleet.Calendar
	loc         *time.Location
	pub         Publisher
	points      PointWriter
	devices     DeviceDirectory
	log         *slog.Logger
	now         func() time.Time
	client      *http.Client
	metrics     *metrics
	kick        chan struct{}

	closeOnce sync.Once
}

// Open validates the configuration, opens (and migrates) the store and
// returns the service. Run starts its workers; Close releases the store.
func Open(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	cfg.applyDefaults()
	if ps := cfg.Validate(); len(ps) > 0 {
		for i := range ps {
			ps[i].Field = "cases." + ps[i].Field
		}
		return nil, ps
	}
	if err := deps.fillDefaults(cfg); err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, dir: deps.Dir, getenv: deps.Getenv,
		fleetCfg: deps.Fleet, onRegistry: deps.OnRegistryChange, rotateGrace: deps.RotateGrace,
		cal: deps.Calendar, loc: deps.Location, pub: deps.Publisher, points: deps.Points, devices: deps.Devices,
		log: deps.Logger, now: deps.Clock, client: deps.HTTPClient, kick: make(chan struct{}, 1),
	}
	if err := s.loadUnits(deps); err != nil {
		return nil, err
	}
	dsn, err := storeDSN(cfg.Store, deps)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.Store.Driver, dsn)
	if err != nil {
		return nil, err
	}
	s.st = st
	if s.metrics, err = newMetrics(deps.Registerer, s); err != nil {
		st.close()
		return nil, err
	}
	return s, nil
}

// fillDefaults fills the dependencies that were not given: the process
// environment, a discarding logger, the wall clock, the city's time zone
// and calendar, a private metrics registry and an HTTP client.
func (deps *Deps) fillDefaults(cfg Config) error {
	if deps.Getenv == nil {
		deps.Getenv = os.Getenv
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Location == nil {
		if deps.Calendar != nil {
			deps.Location = deps.Calendar.Location()
		} else {
			loc, err := fleet.CityLocation("")
			if err != nil {
				return err
			}
			deps.Location = loc
		}
	}
	if deps.Calendar == nil {
		cal, err := fleet.CalendarConfig{}.Build(deps.Location)
		if err != nil {
			return err
		}
		deps.Calendar = cal
	}
	if deps.RotateGrace <= 0 {
		deps.RotateGrace = 24 * time.Hour
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Timeout: cfg.Outbox.Timeout}
	}
	return nil
}

// rules is what a configuration reload replaces at once: the units with
// their secrets and robots, the dispatch table, the deadlines and the API
// tokens. Readers take the whole of one version (Service.r).
type rules struct {
	cfg     Config
	units   map[string]UnitConfig
	secrets map[string][]byte
	robots  map[string]map[string]robot // unit -> robot name -> robot
	tokens  tokens
}

// r returns the rules in force.
func (s *Service) r() *rules { return s.live.Load() }

// loadUnits builds and installs the rules of s.cfg.
func (s *Service) loadUnits(deps Deps) error {
	r, err := s.buildRules(s.cfg)
	if err != nil {
		return err
	}
	s.live.Store(r)
	return nil
}

// buildRules indexes the configured units and loads their secrets and
// robots.
func (s *Service) buildRules(cfg Config) (*rules, error) {
	r := &rules{cfg: cfg, units: map[string]UnitConfig{}, secrets: map[string][]byte{},
		robots: map[string]map[string]robot{}, tokens: newTokens(cfg.Tokens)}
	for _, u := range cfg.Units {
		r.units[u.ID] = u
		sec, err := u.secret(s.dir, s.getenv)
		if err != nil {
			return nil, fmt.Errorf("cases: %w", err)
		}
		if sec != nil {
			r.secrets[u.ID] = sec
		}
		for _, rc := range u.Robots {
			rb, err := loadRobot(u.ID, rc, s.dir, s.getenv)
			if err != nil {
				return nil, fmt.Errorf("cases: %w", err)
			}
			if r.robots[u.ID] == nil {
				r.robots[u.ID] = map[string]robot{}
			}
			r.robots[u.ID][rc.name()] = rb
		}
		if u.MQTTTopic != "" && s.pub == nil {
			return nil, fmt.Errorf("cases: unit %s has an mqtt_topic but no MQTT publisher was given", u.ID)
		}
	}
	return r, nil
}

// RulesUpdate is a checked set of case rules waiting to be installed.
type RulesUpdate struct {
	s *Service
	r *rules
	// NeedsRestart names the settings that differ but take effect only at
	// the next start (cases.store, cases.outbox, cases.check_interval);
	// Apply leaves them as they are.
	NeedsRestart []string
}

// PrepareReload checks the units, dispatch rules, deadlines and API tokens
// of cfg and loads the units' secrets and robots, without installing
// anything: on any problem it returns them all. Apply installs the result.
func (s *Service) PrepareReload(cfg Config) (*RulesUpdate, error) {
	cfg.applyDefaults()
	if ps := cfg.Validate(); len(ps) > 0 {
		for i := range ps {
			ps[i].Field = "cases." + ps[i].Field
		}
		return nil, ps
	}
	r, err := s.buildRules(cfg)
	if err != nil {
		return nil, err
	}
	u := &RulesUpdate{s: s, r: r}
	if cfg.Store != s.cfg.Store {
		u.NeedsRestart = append(u.NeedsRestart, "cases.store")
	}
	if cfg.Outbox != s.cfg.Outbox {
		u.NeedsRestart = append(u.NeedsRestart, "cases.outbox")
	}
	if cfg.CheckInterval != s.cfg.CheckInterval {
		u.NeedsRestart = append(u.NeedsRestart, "cases.check_interval")
	}
	return u, nil
}

// Apply installs the prepared rules at once: requests and workers see the
// old set or the new one, never a mix. Cases already dispatched keep their
// unit and deadlines; new cases and new deadlines follow the new rules.
func (u *RulesUpdate) Apply() { u.s.live.Store(u.r) }

// storeDSN returns the data source of the store: for SQLite its path,
// resolved against deps.Dir, with its folder created; for PostgreSQL the
// DSN, read from the environment when DSNEnv is set.
func storeDSN(store StoreConfig, deps Deps) (string, error) {
	dsn := store.DSN
	switch store.Driver {
	case SQLite:
		dsn = store.Path
		if !filepath.IsAbs(dsn) && deps.Dir != "" {
			dsn = filepath.Join(deps.Dir, dsn)
		}
		if err := os.MkdirAll(filepath.Dir(dsn), 0o750); err != nil {
			return "", fmt.Errorf("cases: cannot create the folder of the SQLite store %s (set cases.store.path): %w", dsn, err)
		}
	case Postgres:
		if store.DSNEnv != "" {
			if dsn = deps.Getenv(store.DSNEnv); dsn == "" {
				return "", fmt.Errorf("cases: environment variable %s (store DSN) is not set", store.DSNEnv)
			}
		}
	}
	return dsn, nil
}

// Close closes the store. Run must have returned first.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.st.close() })
	return err
}

// Run delivers notifications from the outbox and checks deadlines and KPIs
// until ctx ends; then it returns nil. Run it once per service.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.runOutbox(ctx) }()
	go func() { defer wg.Done(); s.runChecks(ctx) }()
	wg.Wait()
	return nil
}

func (s *Service) runChecks(ctx context.Context) {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	lastDay := time.Time{}
	for {
		if _, err := s.CheckDeadlines(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("case deadline check failed", "err", err)
		}
		if _, err := s.ExpireCommands(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("device command expiry failed", "err", err)
		}
		// Today's KPIs, and yesterday's once more after midnight so that
		// its final figures are written.
		now := s.now().In(s.loc)
		day := dayStart(now)
		days := []time.Time{day}
		if !lastDay.IsZero() && !lastDay.Equal(day) {
			days = append(days, lastDay)
		}
		lastDay = day
		for _, d := range days {
			if err := s.WriteKPIPoints(ctx, d); err != nil && ctx.Err() == nil {
				s.log.Warn("case KPI points not written", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// caseKey is the merge key: one open case per violation type and device,
// or type and place for violations tied to a fixed place.
func caseKey(v violations.Violation) string {
	if v.Place != "" {
		return v.Type + "|place:" + v.Place
	}
	return v.Type + "|device:" + v.Device
}

var severityRank = map[string]int{violations.Minor: 1, violations.Major: 2, violations.Critical: 3}

// Raise files a violation as a case, merges it into the open case with the
// same key, or, when v.Resolved, closes that case by verification by data.
// It implements violations.Sink: detectors call it concurrently, and
// gateways sharing PostgreSQL may raise the same key at the same time; one
// case results. Raising the same violation (same Key) twice counts once.
func (s *Service) Raise(ctx context.Context, v violations.Violation) error {
	if v.Type == "" || (v.Device == "" && v.Place == "") {
		return fmt.Errorf("cases: %w: a violation needs a type and a device or place", ErrBadRequest)
	}
	if v.Severity == "" {
		v.Severity = violations.Minor
	}
	key := caseKey(v)
	for attempt := 0; attempt < 5; attempt++ {
		var evs []event
		now := s.now()
		retry := false
		err := s.st.tx(ctx, func(tx *sql.Tx) error {
			evs = evs[:0]
			if err := s.checkFence(ctx, tx); err != nil {
				return err
			}
			if v.Resolved {
				return s.resolve(ctx, tx, key, v, now, &evs)
			}
			if done, err := s.closedWith(ctx, tx, key, v.Key); err != nil || done {
				return err
			}
			id, err := s.insertCase(ctx, tx, key, v, now)
			if err == nil {
				return s.fileNew(ctx, tx, id, v, now, &evs)
			}
			if !isNoRows(err) {
				return err
			}
			c, err := s.openByKey(ctx, tx, key)
			if isNoRows(err) {
				retry = true // closed between our insert and our look: file anew
				return nil
			}
			if err != nil {
				return err
			}
			return s.merge(ctx, tx, c, v, now)
		})
		if err != nil {
			s.metrics.raiseErrors.Inc()
			return fmt.Errorf("cases: raise %s: %w", key, err)
		}
		if retry {
			continue
		}
		s.emit(ctx, evs)
		return nil
	}
	return fmt.Errorf("cases: raise %s: the open case kept changing under us", key)
}

// Withdraw takes back a violation that late readings no longer support: its
// occurrence is removed from the open case with its key, and the case gets a
// note; a case left with no occurrence is resolved with that note. It
// implements violations.Withdrawer.
func (s *Service) Withdraw(ctx context.Context, v violations.Violation, reason string) error {
	key := caseKey(v)
	var evs []event
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkFence(ctx, tx); err != nil {
			return err
		}
		c, err := s.openByKey(ctx, tx, key)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := s.st.exec(ctx, tx, `DELETE FROM case_occurrences WHERE case_id = ? AND violation_key = ?`, c.ID, v.Key); err != nil {
			return err
		}
		var left int
		if err := s.st.queryRow(ctx, tx, `SELECT COUNT(*) FROM case_occurrences WHERE case_id = ? AND violation_key NOT LIKE '%#resolved'`,
			c.ID).Scan(&left); err != nil {
			return err
		}
		note := fmt.Sprintf("%s %s", v.Key, reason)
		if left > 0 {
			return s.addHistory(ctx, tx, HistoryEntry{At: s.now(), Actor: dataVerifier.Name, Action: Comment, From: c.State, To: c.State, Note: note}, c.ID)
		}
		return s.apply(ctx, tx, c, dataVerifier, ActionRequest{Action: Resolve, Note: note}, s.now(), &evs)
	})
	if err != nil {
		return fmt.Errorf("cases: withdraw %s: %w", v.Key, err)
	}
	s.emit(ctx, evs)
	return nil
}

func (s *Service) openByKey(ctx context.Context, tx *sql.Tx, key string) (*Case, error) {
	return scanCase(s.st.queryRow(ctx, tx, `SELECT `+caseColumns+` FROM cases WHERE case_key = ? AND is_open = 1`+s.st.forUpdate(), key))
}

// insertCase inserts a new open case, or returns sql.ErrNoRows when an open
// case with the key exists (or is being inserted by another transaction,
// which PostgreSQL waits for).
func (s *Service) insertCase(ctx context.Context, tx *sql.Tx, key string, v violations.Violation, now time.Time) (int64, error) {
	var prev int
	if err := s.st.queryRow(ctx, tx, `SELECT COUNT(*) FROM cases WHERE case_key = ? AND is_open = 0`, key).Scan(&prev); err != nil {
		return 0, err
	}
	first, last := span(v, now)
	var id int64
	err := s.st.queryRow(ctx, tx, `INSERT INTO cases (case_key, is_open, type, severity, state, device, kind, place, district,
contractor, category, site, route, lat, lon, has_pos, geometry, summary, hits, first_seen, last_seen, recurrence, updated_at)
VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
ON CONFLICT (case_key) WHERE is_open = 1 DO NOTHING RETURNING id`,
		key, v.Type, v.Severity, string(Reported), v.Device, v.Kind, v.Place, v.District, v.Contractor, v.Category, v.Site,
		v.Route, v.Lat, v.Lon, b2i(v.HasPos), string(v.Geometry), v.Summary, ms(first), ms(last), prev, ms(now)).Scan(&id)
	return id, err
}

// Fence stores f as its scope's token, unless the scope holds a greater
// one (then it returns violations.ErrFenced): a detector that takes over a
// partition calls it before it raises anything, so that from then on the
// store refuses what the partition's previous owner raises.
func (s *Service) Fence(ctx context.Context, f violations.Fence) error {
	ctx = violations.WithFence(ctx, f)
	return s.st.tx(ctx, func(tx *sql.Tx) error { return s.checkFence(ctx, tx) })
}

// checkFence, when ctx carries a fencing token (violations.WithFence),
// raises the scope's token to it and refuses with violations.ErrFenced if
// the scope already holds a greater one. The update locks the scope's row
// until the transaction ends, so a raise of the new holder and one of the
// old cannot interleave: once the new holder's first raise committed,
// nothing of the old one's commits.
func (s *Service) checkFence(ctx context.Context, tx *sql.Tx) error {
	f, ok := violations.FenceFrom(ctx)
	if !ok {
		return nil
	}
	if _, err := s.st.exec(ctx, tx, `INSERT INTO case_fences (scope, token) VALUES (?, ?) ON CONFLICT (scope) DO NOTHING`,
		f.Scope, int64(f.Token)); err != nil {
		return err
	}
	if _, err := s.st.exec(ctx, tx, `UPDATE case_fences SET token = CASE WHEN token < ? THEN ? ELSE token END WHERE scope = ?`,
		int64(f.Token), int64(f.Token), f.Scope); err != nil {
		return err
	}
	var held int64
	if err := s.st.queryRow(ctx, tx, `SELECT token FROM case_fences WHERE scope = ?`, f.Scope).Scan(&held); err != nil {
		return err
	}
	if uint64(held) > f.Token {
		s.metrics.fenced.Inc()
		return fmt.Errorf("%w: %s holds %d, the raise came with %d", violations.ErrFenced, f.Scope, held, f.Token)
	}
	return nil
}

// closedWith reports whether a closed case of key already counts the
// violation vkey: a replay of it (a detector resuming after a crash, a new
// partition owner reading again what the last one had not acknowledged)
// must not open a second case after the first was resolved.
func (s *Service) closedWith(ctx context.Context, tx *sql.Tx, key, vkey string) (bool, error) {
	if vkey == "" {
		return false, nil
	}
	var n int
	err := s.st.queryRow(ctx, tx, `SELECT COUNT(*) FROM case_occurrences o JOIN cases c ON c.id = o.case_id
WHERE c.case_key = ? AND c.is_open = 0 AND o.violation_key = ?`, key, vkey).Scan(&n)
	if err != nil {
		return false, err
	}
	if n > 0 {
		s.metrics.replayed.Inc()
	}
	return n > 0, nil
}

// span is the event-time span a violation covers.
func span(v violations.Violation, now time.Time) (time.Time, time.Time) {
	first, last := v.Start, v.End
	if first.IsZero() {
		first = now
	}
	if last.IsZero() || last.Before(first) {
		last = first
	}
	return first, last
}

// fileNew files a case just inserted and dispatches it by the table.
func (s *Service) fileNew(ctx context.Context, tx *sql.Tx, id int64, v violations.Violation, now time.Time, evs *[]event) error {
	c, err := s.loadCase(ctx, tx, id, false)
	if err != nil {
		return err
	}
	if err := s.addHistory(ctx, tx, HistoryEntry{At: now, Actor: "detector", Action: Report, To: Reported, Note: v.Summary}, id); err != nil {
		return err
	}
	if err := s.addEvidence(ctx, tx, id, v, now); err != nil {
		return err
	}
	if err := s.apply(ctx, tx, c, System, ActionRequest{Action: File}, now, evs); err != nil {
		return err
	}
	if unit := s.route(c.Type, c.District); unit != "" {
		return s.apply(ctx, tx, c, System, ActionRequest{Action: Dispatch, Unit: unit, Note: "dispatched by the dispatch table"}, now, evs)
	}
	return nil
}

// merge adds a repeat of the violation to its open case.
func (s *Service) merge(ctx context.Context, tx *sql.Tx, c *Case, v violations.Violation, now time.Time) error {
	fresh, err := s.addOccurrence(ctx, tx, c.ID, v.Key)
	if err != nil || !fresh {
		return err // a replay of a violation already counted
	}
	_, last := span(v, now)
	c.Count++
	if last.After(c.LastSeen) {
		c.LastSeen = last
	}
	if severityRank[v.Severity] > severityRank[c.Severity] {
		c.Severity = v.Severity
	}
	if v.Summary != "" {
		c.Summary = v.Summary
	}
	c.UpdatedAt = now
	if err := s.saveCase(ctx, tx, c); err != nil {
		return err
	}
	s.metrics.merged.Inc()
	if c.Count <= maxEvidence {
		return s.insertEvidence(ctx, tx, c.ID, v, now)
	}
	return nil
}

// maxEvidence bounds the evidence kept per case: a bin that overflows all
// month keeps its first raises, and the count says the rest.
const maxEvidence = 500

// resolve closes the open case of key by verification by data.
func (s *Service) resolve(ctx context.Context, tx *sql.Tx, key string, v violations.Violation, now time.Time, evs *[]event) error {
	c, err := s.openByKey(ctx, tx, key)
	if isNoRows(err) {
		return nil // nothing open: closed by a person already, or never filed
	}
	if err != nil {
		return err
	}
	if _, err := s.addOccurrence(ctx, tx, c.ID, v.Key+"#resolved"); err != nil {
		return err
	}
	if err := s.insertEvidence(ctx, tx, c.ID, v, now); err != nil {
		return err
	}
	note := "verified by data"
	if v.Summary != "" {
		note += ": " + v.Summary
	}
	return s.apply(ctx, tx, c, dataVerifier, ActionRequest{Action: Resolve, Note: note, evidence: v.Evidence}, now, evs)
}

func (s *Service) addEvidence(ctx context.Context, tx *sql.Tx, id int64, v violations.Violation, now time.Time) error {
	if _, err := s.addOccurrence(ctx, tx, id, v.Key); err != nil {
		return err
	}
	return s.insertEvidence(ctx, tx, id, v, now)
}

// addOccurrence records a violation key for the case; false when it was
// already there. An empty key is always fresh.
func (s *Service) addOccurrence(ctx context.Context, tx *sql.Tx, id int64, vkey string) (bool, error) {
	if vkey == "" || vkey == "#resolved" {
		return true, nil
	}
	res, err := s.st.exec(ctx, tx, `INSERT INTO case_occurrences (case_id, violation_key) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, vkey)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *Service) insertEvidence(ctx context.Context, tx *sql.Tx, id int64, v violations.Violation, now time.Time) error {
	rec := EvidenceRecord{At: now, ViolationKey: v.Key, Severity: v.Severity, Start: v.Start, End: v.End,
		Summary: v.Summary, Resolved: v.Resolved, Items: v.Evidence}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = s.st.exec(ctx, tx, `INSERT INTO case_evidence (case_id, at, violation_key, body) VALUES (?, ?, ?, ?)`, id, ms(now), v.Key, string(b))
	return err
}

// ActionRequest is an action with its arguments, as POSTed to
// /api/v1/cases/{id}/{action}.
type ActionRequest struct {
	Action Action `json:"-"`
	// Note is kept in the history.
	Note string `json:"note,omitempty"`
	// Pass is the verdict of verify: true closes, false sends back (rework).
	Pass *bool `json:"pass,omitempty"`
	// Unit is the unit of transfer (required) and dispatch (default: the table).
	Unit string `json:"unit,omitempty"`
	// Until is the new close deadline of defer (optional).
	Until time.Time `json:"until,omitzero"`

	evidence []violations.Evidence
}

// Act applies an API action to a case on behalf of who. Errors:
// ErrNotFound (also for a case who may not see), ErrForbidden (who's role
// may not take the action), a *TransitionError (ErrInvalidTransition),
// ErrBadRequest, ErrConflict.
func (s *Service) Act(ctx context.Context, who Actor, id int64, req ActionRequest) (*Case, error) {
	if _, ok := roles[req.Action]; !ok {
		return nil, fmt.Errorf("%w: unknown action %q", ErrBadRequest, req.Action)
	}
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	var evs []event
	err := s.st.tx(ctx, func(tx *sql.Tx) error {
		evs = evs[:0]
		c, err := s.loadCase(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !who.sees(c) {
			return fmt.Errorf("case %d: %w", id, ErrNotFound)
		}
		if !contains(roles[req.Action], who.Role) {
			return fmt.Errorf("%w: a %s token may not %s", ErrForbidden, who.Role, req.Action)
		}
		now := s.now()
		if err := s.checkLimits(ctx, tx, id, req, now); err != nil {
			return err
		}
		return s.apply(ctx, tx, c, who, req, now, &evs)
	})
	if err != nil {
		return nil, err
	}
	s.emit(ctx, evs)
	return s.Get(ctx, System, id)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// apply performs one transition on c (locked in tx): state, timestamps,
// deadlines, history, notifications; the events to emit after commit are
// appended to evs.
func (s *Service) apply(ctx context.Context, tx *sql.Tx, c *Case, who Actor, req ActionRequest, now time.Time, evs *[]event) error {
	a := req.Action
	from := c.State
	to, err := next(c.ID, from, a)
	if err != nil {
		return err
	}
	h := HistoryEntry{At: now, Actor: who.Name, Action: a, From: from, Note: req.Note}
	point, err := s.change(ctx, tx, c, req, now, &h, &to)
	if err != nil {
		return err
	}
	c.State, h.To, c.UpdatedAt = to, to, now
	if err := s.saveCase(ctx, tx, c); err != nil {
		if a == Reopen {
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
		return err
	}
	if err := s.addHistory(ctx, tx, h, c.ID); err != nil {
		return err
	}
	if point != "" {
		*evs = append(*evs, event{action: point, c: *c, at: now})
	}
	return nil
}

// change makes the action's own changes to c, h and to, and returns the name
// of the case point it emits ("" for none).
func (s *Service) change(ctx context.Context, tx *sql.Tx, c *Case, req ActionRequest, now time.Time, h *HistoryEntry, to *State) (string, error) {
	point := ""
	a := req.Action
	switch a {
	case File:
		c.FiledAt = now
		c.CloseDue = s.due(c.Type, c.Severity, now, false)
		point = "filed"
	case Dispatch, Transfer:
		return s.dispatchTo(ctx, tx, c, req, now, h)
	case Accept:
		c.AcceptedAt = now
		point = "accepted"
	case Handle:
		c.HandledAt = now
		point = "handled"
	case Verify:
		if req.Pass == nil {
			return "", fmt.Errorf("%w: verify needs pass: true or false", ErrBadRequest)
		}
		if *req.Pass {
			c.ClosedAt, c.Open = now, false
			point = "closed"
			h.Note = joinNote("pass", req.Note)
		} else {
			*to = Dispatched
			c.Reworks++
			c.HandledAt = time.Time{}
			s.restartAccept(c, now)
			point = "reworked"
			h.Note = joinNote("fail", req.Note)
			if err := s.notify(ctx, tx, c, c.Unit, point, now, ""); err != nil {
				return "", err
			}
		}
	case SendBack:
		point = ""
	case Defer:
		c.Extended = true
		if !req.Until.IsZero() {
			if !req.Until.After(now) {
				return "", fmt.Errorf("%w: defer until %s, which is not in the future", ErrBadRequest, req.Until.Format(time.RFC3339))
			}
			c.CloseDue, c.CloseMissed = req.Until, false
			h.Note = joinNote("close deadline moved to "+req.Until.In(s.loc).Format(time.RFC3339), req.Note)
		}
		point = "deferred"
	case Reject:
		c.Open = false
		point = "rejected"
	case Reopen:
		point = "reopened"
		return point, s.reopen(ctx, tx, c, now)
	case Resolve:
		c.ClosedAt, c.Open, c.VerifiedByData = now, false, true
		h.Evidence = req.evidence
		point = "closed"
	case Comment:
	}
	return point, nil
}

// dispatchTo sends c to the unit the request names, or for a dispatch
// without one to the unit of the dispatch table, and notifies it.
func (s *Service) dispatchTo(ctx context.Context, tx *sql.Tx, c *Case, req ActionRequest, now time.Time, h *HistoryEntry) (string, error) {
	a := req.Action
	unit := req.Unit
	if unit == "" {
		if a == Transfer {
			return "", fmt.Errorf("%w: transfer needs the unit to transfer to", ErrBadRequest)
		}
		unit = s.route(c.Type, c.District)
	}
	if _, ok := s.r().units[unit]; !ok {
		return "", fmt.Errorf("%w: unknown unit %q", ErrBadRequest, unit)
	}
	if a == Transfer && unit == c.Unit {
		return "", fmt.Errorf("%w: case %d is already with unit %q", ErrBadRequest, c.ID, unit)
	}
	c.Unit, h.Unit = unit, unit
	s.restartAccept(c, now)
	point := "dispatched"
	if a == Transfer {
		point = "transferred"
	}
	if err := s.notify(ctx, tx, c, unit, point, now, ""); err != nil {
		return "", err
	}
	return point, nil
}

// reopen opens a closed case again, unless another case with its key is open.
func (s *Service) reopen(ctx context.Context, tx *sql.Tx, c *Case, now time.Time) error {
	var n int
	if err := s.st.queryRow(ctx, tx, `SELECT COUNT(*) FROM cases WHERE case_key = ? AND is_open = 1`, c.Key).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: another case with key %s is open; comment there instead", ErrConflict, c.Key)
	}
	c.Open, c.ClosedAt, c.HandledAt, c.VerifiedByData = true, time.Time{}, time.Time{}, false
	c.CloseDue, c.CloseMissed = s.due(c.Type, c.Severity, now, false), false
	s.restartAccept(c, now)
	if err := s.notify(ctx, tx, c, c.Unit, "reopened", now, ""); err != nil {
		return err
	}
	return nil
}

// restartAccept starts a new round with the unit: dispatched now, to be
// accepted by the accept deadline.
func (s *Service) restartAccept(c *Case, now time.Time) {
	c.DispatchedAt, c.AcceptedAt = now, time.Time{}
	c.AcceptDue, c.AcceptMissed = s.due(c.Type, c.Severity, now, true), false
}

func joinNote(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// route picks the responsible unit for a type in a district.
func (s *Service) route(typ, district string) string {
	best, score := s.r().cfg.Dispatch.DefaultUnit, -1
	for _, r := range s.r().cfg.Dispatch.Rules {
		sc := 0
		switch {
		case wild(r.Type):
		case r.Type == typ:
			sc += 2
		default:
			continue
		}
		switch {
		case wild(r.District):
		case r.District == district:
			sc++
		default:
			continue
		}
		if sc > score {
			best, score = r.Unit, sc
		}
	}
	return best
}

// deadlineRule picks the most specific deadline rule for type and severity.
func (s *Service) deadlineRule(typ, sev string) DeadlineConfig {
	best, score := DeadlineConfig{Accept: DefaultAcceptDeadline, Close: DefaultCloseDeadline}, -1
	for _, d := range s.r().cfg.Deadlines {
		sc := 0
		switch {
		case wild(d.Type):
		case d.Type == typ:
			sc += 2
		default:
			continue
		}
		switch {
		case wild(d.Severity):
		case d.Severity == sev:
			sc++
		default:
			continue
		}
		if sc > score {
			best, score = d, sc
		}
	}
	return best
}

// due returns the accept (accept true) or close deadline counted from from.
func (s *Service) due(typ, sev string, from time.Time, accept bool) time.Time {
	d := s.deadlineRule(typ, sev)
	dur := d.Close
	if accept {
		dur = d.Accept
	}
	if d.WorkingTime {
		return s.cal.AddWorkingTime(from, dur)
	}
	return from.Add(dur)
}

// Due returns the accept and close deadlines a case of type and severity
// filed and dispatched at t would get.
func (s *Service) Due(typ, severity string, t time.Time) (accept, close time.Time) {
	return s.due(typ, severity, t, true), s.due(typ, severity, t, false)
}
