package cases

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CheckDeadlines marks the open cases whose accept or close deadline has
// passed as overdue, records it in their history, and notifies the
// escalation unit, once per deadline. It returns how many deadlines it
// found missed. Run calls it every check_interval; gateways sharing a store
// may call it at once, and each missed deadline is still handled once.
func (s *Service) CheckDeadlines(ctx context.Context) (int, error) {
	now := s.now()
	rows, err := s.st.query(ctx, s.st.db, `SELECT id FROM cases WHERE is_open = 1 AND (
 (accept_missed = 0 AND accept_due > 0 AND accept_due <= ? AND state IN (?, ?))
 OR (close_missed = 0 AND close_due > 0 AND close_due <= ?)) ORDER BY id LIMIT 1000`,
		ms(now), string(Dispatched), string(Transferred), ms(now))
	if err != nil {
		return 0, fmt.Errorf("cases: deadline check: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	missed := 0
	for _, id := range ids {
		var evs []event
		n := 0
		err := s.st.tx(ctx, func(tx *sql.Tx) error {
			evs, n = evs[:0], 0
			c, err := s.loadCase(ctx, tx, id, true)
			if err != nil {
				return err
			}
			if !c.Open {
				return nil
			}
			var notes []string
			if !c.AcceptMissed && !c.AcceptDue.IsZero() && !c.AcceptDue.After(now) && (c.State == Dispatched || c.State == Transferred) {
				c.AcceptMissed = true
				notes = append(notes, "accept deadline "+c.AcceptDue.In(s.loc).Format(time.RFC3339)+" missed")
			}
			if !c.CloseMissed && !c.CloseDue.IsZero() && !c.CloseDue.After(now) {
				c.CloseMissed = true
				notes = append(notes, "close deadline "+c.CloseDue.In(s.loc).Format(time.RFC3339)+" missed")
			}
			if len(notes) == 0 {
				return nil // another gateway was first
			}
			n = len(notes)
			c.Overdue, c.UpdatedAt = true, now
			if err := s.saveCase(ctx, tx, c); err != nil {
				return err
			}
			for _, note := range notes {
				h := HistoryEntry{At: now, Actor: System.Name, Action: Overdue, From: c.State, To: c.State, Unit: c.Unit, Note: note}
				if err := s.addHistory(ctx, tx, h, c.ID); err != nil {
					return err
				}
				if esc := s.escalation(c.Unit); esc != "" {
					if err := s.notify(ctx, tx, c, esc, "overdue", now, note); err != nil {
						return err
					}
				}
			}
			evs = append(evs, event{action: "overdue", c: *c, at: now})
			return nil
		})
		if err != nil {
			return missed, fmt.Errorf("cases: deadline of case %d: %w", id, err)
		}
		missed += n
		s.emit(ctx, evs)
	}
	return missed, nil
}

// escalation is the unit told when unit misses a deadline.
func (s *Service) escalation(unit string) string {
	if u, ok := s.r().units[unit]; ok && u.Escalation != "" {
		return u.Escalation
	}
	return s.r().cfg.Dispatch.EscalationUnit
}
