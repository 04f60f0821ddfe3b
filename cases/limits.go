package cases

import (
	"context"
	"database/sql"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what an API caller may add to a case.
const (
	// MaxNoteRunes caps a note or comment.
	MaxNoteRunes = 2000
	// MaxComments caps the comments on one case.
	MaxComments = 200
	// MaxDeferHorizon is how far ahead a defer may move the close deadline.
	MaxDeferHorizon = 180 * 24 * time.Hour
)

// checkText refuses a text field with a control character (other than a
// line break or tab in a note), a bidirectional formatting character, or
// invalid UTF-8: they hide or reorder what the next reader sees.
func checkText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadRequest, field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fmt.Errorf("%w: %s has %d characters, at most %d", ErrBadRequest, field, n, max)
	}
	for _, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\t'):
		case unicode.IsControl(r):
			return fmt.Errorf("%w: %s contains the control character %U", ErrBadRequest, field, r)
		case r == '\u061c' || r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069'):
			return fmt.Errorf("%w: %s contains the bidirectional formatting character %U", ErrBadRequest, field, r)
		}
	}
	return nil
}

// checkRequest applies the text limits to an action's arguments.
func checkRequest(req ActionRequest) error {
	if err := checkText("note", req.Note, MaxNoteRunes, true); err != nil {
		return err
	}
	return checkText("unit", req.Unit, 200, false)
}

// checkLimits applies the per-case limits of an action on case id at now.
func (s *Service) checkLimits(ctx context.Context, tx *sql.Tx, id int64, req ActionRequest, now time.Time) error {
	switch req.Action {
	case Comment:
		var n int
		if err := s.st.queryRow(ctx, tx, `SELECT COUNT(*) FROM case_history WHERE case_id = ? AND action = ?`, id, string(Comment)).Scan(&n); err != nil {
			return err
		}
		if n >= MaxComments {
			return fmt.Errorf("%w: case %d already has %d comments, the most it takes", ErrConflict, id, n)
		}
	case Defer:
		if !req.Until.IsZero() && req.Until.After(now.Add(MaxDeferHorizon)) {
			return fmt.Errorf("%w: defer until %s is more than %d days ahead", ErrBadRequest, req.Until.Format(time.RFC3339), int(MaxDeferHorizon/(24*time.Hour)))
		}
	}
	return nil
}
