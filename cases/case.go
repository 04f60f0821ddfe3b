package cases

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sanigate/sanigate/violations"
)

// Case is one case: a violation (and its repeats) on its way through the loop.
type Case struct {
	ID       int64  `json:"id"`
	Key      string `json:"key"` // type|device:ID or type|place:ID; one open case per key
	Type     string `json:"type"`
	Severity string `json:"severity"`
	State    State  `json:"state"`
	Open     bool   `json:"open"`

	Device     string          `json:"device,omitempty"`
	Kind       string          `json:"kind,omitempty"`
	Place      string          `json:"place,omitempty"`
	District   string          `json:"district,omitempty"`
	Contractor string          `json:"contractor,omitempty"`
	Category   string          `json:"category,omitempty"`
	Site       string          `json:"site,omitempty"`
	Route      string          `json:"route,omitempty"`
	Lat        float64         `json:"lat,omitempty"`
	Lon        float64         `json:"lon,omitempty"`
	HasPos     bool            `json:"has_pos"`
	Geometry   json.RawMessage `json:"geometry,omitempty"`
	Summary    string          `json:"summary"`

	// Unit is the responsible unit the case is dispatched to.
	Unit string `json:"unit,omitempty"`
	// Count is how many times the violation was raised while the case was open.
	Count     int       `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`

	FiledAt      time.Time `json:"filed_at,omitzero"`
	DispatchedAt time.Time `json:"dispatched_at,omitzero"`
	AcceptedAt   time.Time `json:"accepted_at,omitzero"`
	HandledAt    time.Time `json:"handled_at,omitzero"`
	ClosedAt     time.Time `json:"closed_at,omitzero"`
	AcceptDue    time.Time `json:"accept_due,omitzero"`
	CloseDue     time.Time `json:"close_due,omitzero"`

	// Overdue is set once a deadline was missed, and stays set.
	Overdue      bool `json:"overdue"`
	AcceptMissed bool `json:"accept_missed"`
	CloseMissed  bool `json:"close_missed"`
	// Reworks counts failed verifications (返工).
	Reworks int `json:"reworks"`
	// Extended is set once the case was deferred (延期).
	Extended bool `json:"extended"`
	// Recurrence is the number of earlier cases with the same key.
	Recurrence     int  `json:"recurrence"`
	VerifiedByData bool `json:"verified_by_data"`

	UpdatedAt time.Time `json:"updated_at"`

	// Evidence and History are filled by Get, not by List.
	Evidence []EvidenceRecord `json:"evidence,omitempty"`
	History  []HistoryEntry   `json:"history,omitempty"`
}

// HistoryEntry is one step of a case: who did what, when, and why.
type HistoryEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action Action    `json:"action"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	Unit   string    `json:"unit,omitempty"`
	Note   string    `json:"note,omitempty"`
	// Evidence holds the proving readings of a verification by data.
	Evidence []violations.Evidence `json:"evidence,omitempty"`
}

// EvidenceRecord is what one raise of the violation brought.
type EvidenceRecord struct {
	At           time.Time             `json:"at"`
	ViolationKey string                `json:"violation_key,omitempty"`
	Severity     string                `json:"severity"`
	Start        time.Time             `json:"start,omitzero"`
	End          time.Time             `json:"end,omitzero"`
	Summary      string                `json:"summary,omitempty"`
	Resolved     bool                  `json:"resolved"`
	Items        []violations.Evidence `json:"items,omitempty"`
}

const caseColumns = `id, case_key, is_open, type, severity, state, device, kind, place, district, contractor, category,
site, route, lat, lon, has_pos, geometry, summary, unit, hits, first_seen, last_seen, filed_at, dispatched_at,
accepted_at, handled_at, closed_at, accept_due, close_due, accept_missed, close_missed, overdue, rework_count,
extended, recurrence, verified_by_data, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanCase(r scanner) (*Case, error) {
	var (
		c                                                           Case
		open, hasPos, am, cm, od, ext, vbd                          int
		geometry                                                    string
		first, last, filed, disp, acc, hand, closed, ad, cd, update int64
	)
	err := r.Scan(&c.ID, &c.Key, &open, &c.Type, &c.Severity, &c.State, &c.Device, &c.Kind, &c.Place, &c.District,
		&c.Contractor, &c.Category, &c.Site, &c.Route, &c.Lat, &c.Lon, &hasPos, &geometry, &c.Summary, &c.Unit, &c.Count,
		&first, &last, &filed, &disp, &acc, &hand, &closed, &ad, &cd, &am, &cm, &od, &c.Reworks, &ext, &c.Recurrence,
		&vbd, &update)
	if err != nil {
		return nil, err
	}
	c.Open, c.HasPos, c.AcceptMissed, c.CloseMissed, c.Overdue, c.Extended, c.VerifiedByData =
		open == 1, hasPos == 1, am == 1, cm == 1, od == 1, ext == 1, vbd == 1
	if geometry != "" {
		c.Geometry = json.RawMessage(geometry)
	}
	c.FirstSeen, c.LastSeen, c.FiledAt, c.DispatchedAt = fromMS(first), fromMS(last), fromMS(filed), fromMS(disp)
	c.AcceptedAt, c.HandledAt, c.ClosedAt = fromMS(acc), fromMS(hand), fromMS(closed)
	c.AcceptDue, c.CloseDue, c.UpdatedAt = fromMS(ad), fromMS(cd), fromMS(update)
	return &c, nil
}

// saveCase writes back the mutable columns of c.
func (s *Service) saveCase(ctx context.Context, tx *sql.Tx, c *Case) error {
	_, err := s.st.exec(ctx, tx, `UPDATE cases SET is_open = ?, severity = ?, state = ?, unit = ?, hits = ?, last_seen = ?,
summary = ?, filed_at = ?, dispatched_at = ?, accepted_at = ?, handled_at = ?, closed_at = ?, accept_due = ?, close_due = ?,
accept_missed = ?, close_missed = ?, overdue = ?, rework_count = ?, extended = ?, verified_by_data = ?, updated_at = ?
WHERE id = ?`,
		b2i(c.Open), c.Severity, string(c.State), c.Unit, c.Count, ms(c.LastSeen), c.Summary, ms(c.FiledAt),
		ms(c.DispatchedAt), ms(c.AcceptedAt), ms(c.HandledAt), ms(c.ClosedAt), ms(c.AcceptDue), ms(c.CloseDue),
		b2i(c.AcceptMissed), b2i(c.CloseMissed), b2i(c.Overdue), c.Reworks, b2i(c.Extended), b2i(c.VerifiedByData),
		ms(c.UpdatedAt), c.ID)
	return err
}

func (s *Service) loadCase(ctx context.Context, q querier, id int64, lock bool) (*Case, error) {
	query := `SELECT ` + caseColumns + ` FROM cases WHERE id = ?`
	if lock {
		query += s.st.forUpdate()
	}
	c, err := scanCase(s.st.queryRow(ctx, q, query, id))
	if isNoRows(err) {
		return nil, fmt.Errorf("case %d: %w", id, ErrNotFound)
	}
	return c, err
}

// Filter selects cases for List. Zero fields select everything.
type Filter struct {
	State      []State
	Type       string
	Severity   string
	District   string
	Unit       string
	Contractor string
	// Overdue, when set, selects cases whose overdue flag equals it.
	Overdue *bool
	// Open, when set, selects open (true) or finished (false) cases.
	Open *bool
	// From and To bound the filing time: From <= filed_at < To.
	From, To time.Time
	// Order is OrderNewest (default), OrderOldest or OrderDue.
	Order string
	// Before is the cursor of OrderNewest: only cases with an id below it.
	Before int64
	// After is the cursor of OrderOldest (cases with an id above it) and,
	// with AfterDue, of OrderDue (cases after (AfterDue, After)).
	After    int64
	AfterDue time.Time
	// Limit is the page size (default 50, at most 1000).
	Limit int
}

// Orders of a case list; each pages by a keyset on an index.
const (
	OrderNewest = "newest" // by id, newest first
	OrderOldest = "oldest" // by id, oldest first
	OrderDue    = "due"    // by close deadline, earliest first, then id
)

// Page is one page of a case list, newest first.
type Page struct {
	Cases []Case `json:"cases"`
	// NextCursor, when not empty, fetches the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// where builds the SQL condition of f within who's scope; withState false
// leaves the state filter out (for counts per state).
func (f Filter) where(who Actor, withState bool) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	scopeCond, scopeArgs := who.scope()
	if scopeCond != "" {
		add(scopeCond, scopeArgs...)
	}
	if withState && len(f.State) > 0 {
		ph := make([]string, len(f.State))
		for i, st := range f.State {
			ph[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "state IN ("+strings.Join(ph, ", ")+")")
	}
	for _, eq := range []struct{ col, v string }{{"type", f.Type}, {"severity", f.Severity}, {"district", f.District},
		{"unit", f.Unit}, {"contractor", f.Contractor}} {
		if eq.v != "" {
			add(eq.col+" = ?", eq.v)
		}
	}
	if f.Overdue != nil {
		add("overdue = ?", b2i(*f.Overdue))
	}
	if f.Open != nil {
		add("is_open = ?", b2i(*f.Open))
	}
	if !f.From.IsZero() {
		add("filed_at >= ?", ms(f.From))
	}
	if !f.To.IsZero() {
		add("filed_at < ?", ms(f.To))
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// List returns the cases a scope may see that match f, in f's order.
func (s *Service) List(ctx context.Context, who Actor, f Filter) (Page, error) {
	cond, args := f.where(who, true)
	page := func(c string, a ...any) {
		if cond == "" {
			cond = " WHERE " + c
		} else {
			cond += " AND " + c
		}
		args = append(args, a...)
	}
	order := " ORDER BY id DESC"
	switch f.Order {
	case "", OrderNewest:
		if f.Before > 0 {
			page("id < ?", f.Before)
		}
	case OrderOldest:
		order = " ORDER BY id"
		if f.After > 0 {
			page("id > ?", f.After)
		}
	case OrderDue:
		order = " ORDER BY close_due, id"
		if f.After > 0 {
			d := ms(f.AfterDue)
			page("(close_due > ? OR (close_due = ? AND id > ?))", d, d, f.After)
		}
	default:
		return Page{}, fmt.Errorf("%w: order %q (newest, oldest, due)", ErrBadRequest, f.Order)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	if limit > 1000 {
		limit = 1000
	}
	q := `SELECT ` + caseColumns + ` FROM cases` + cond + order + " LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.st.query(ctx, s.st.db, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("cases: list: %w", err)
	}
	defer rows.Close()
	out := Page{Cases: []Case{}}
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return Page{}, err
		}
		out.Cases = append(out.Cases, *c)
	}
	if err := rows.Err(); err != nil {
		return Page{}, err
	}
	if len(out.Cases) > limit {
		out.Cases = out.Cases[:limit]
		out.NextCursor = strconv.FormatInt(out.Cases[limit-1].ID, 10)
	}
	return out, nil
}

// CountByState counts the cases who sees that match f (its state filter
// aside), per state. With limit > 0 each count stops at limit+1, so that
// counting a filter that no index covers stays cheap on a large store; a
// count of limit+1 means "more than limit".
func (s *Service) CountByState(ctx context.Context, who Actor, f Filter, limit int) (map[State]int, error) {
	cond, args := f.where(who, false)
	out := map[State]int{}
	if limit <= 0 {
		rows, err := s.st.query(ctx, s.st.db, `SELECT state, COUNT(*) FROM cases`+cond+` GROUP BY state`, args...)
		if err != nil {
			return nil, fmt.Errorf("cases: count by state: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var st string
			var n int
			if err := rows.Scan(&st, &n); err != nil {
				return nil, err
			}
			out[State(st)] = n
		}
		return out, rows.Err()
	}
	if cond == "" {
		cond = " WHERE state = ?"
	} else {
		cond += " AND state = ?"
	}
	for _, st := range States {
		var n int
		q := `SELECT COUNT(*) FROM (SELECT 1 FROM cases` + cond + ` LIMIT ` + strconv.Itoa(limit+1) + `) AS capped`
		if err := s.st.queryRow(ctx, s.st.db, q, append(append([]any(nil), args...), string(st))...).Scan(&n); err != nil {
			return nil, fmt.Errorf("cases: count %s: %w", st, err)
		}
		if n > 0 {
			out[st] = n
		}
	}
	return out, nil
}

// LatestID is the id of the newest case who sees (0 when none).
func (s *Service) LatestID(ctx context.Context, who Actor) (int64, error) {
	cond, args := Filter{}.where(who, false)
	var id sql.NullInt64
	if err := s.st.queryRow(ctx, s.st.db, `SELECT MAX(id) FROM cases`+cond, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("cases: latest id: %w", err)
	}
	return id.Int64, nil
}

// Get returns one case with its evidence (the latest 100 raises) and full
// history; ErrNotFound when it does not exist or who may not see it.
func (s *Service) Get(ctx context.Context, who Actor, id int64) (*Case, error) {
	c, err := s.loadCase(ctx, s.st.db, id, false)
	if err != nil {
		return nil, err
	}
	if !who.sees(c) {
		return nil, fmt.Errorf("case %d: %w", id, ErrNotFound)
	}
	if c.History, err = s.history(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.st.query(ctx, s.st.db, `SELECT body FROM case_evidence WHERE case_id = ? ORDER BY id DESC LIMIT 100`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var e EvidenceRecord
		if json.Unmarshal([]byte(body), &e) == nil {
			c.Evidence = append(c.Evidence, e)
		}
	}
	// Oldest first, like the history.
	for i, j := 0, len(c.Evidence)-1; i < j; i, j = i+1, j-1 {
		c.Evidence[i], c.Evidence[j] = c.Evidence[j], c.Evidence[i]
	}
	return c, rows.Err()
}

func (s *Service) history(ctx context.Context, id int64) ([]HistoryEntry, error) {
	rows, err := s.st.query(ctx, s.st.db, `SELECT id, at, actor, action, from_state, to_state, unit, note, evidence
FROM case_history WHERE case_id = ? ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HistoryEntry
	for rows.Next() {
		var h HistoryEntry
		var at int64
		var ev string
		if err := rows.Scan(&h.ID, &at, &h.Actor, &h.Action, &h.From, &h.To, &h.Unit, &h.Note, &ev); err != nil {
			return nil, err
		}
		h.At = fromMS(at)
		if ev != "" {
			_ = json.Unmarshal([]byte(ev), &h.Evidence)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (s *Service) addHistory(ctx context.Context, tx *sql.Tx, h HistoryEntry, caseID int64) error {
	ev := ""
	if len(h.Evidence) > 0 {
		b, _ := json.Marshal(h.Evidence)
		ev = string(b)
	}
	_, err := s.st.exec(ctx, tx, `INSERT INTO case_history (case_id, at, actor, action, from_state, to_state, unit, note, evidence)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, caseID, ms(h.At), h.Actor, string(h.Action), string(h.From), string(h.To), h.Unit, h.Note, ev)
	return err
}
