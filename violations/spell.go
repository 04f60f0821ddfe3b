package violations

import "time"

// level is where one reading stands against a duration rule's limits.
type level int

const (
	// under: at or past the clear level (the condition is over).
	under level = iota
	// band: between the clear level and the limit; a spell already begun
	// goes on (hysteresis), none begins.
	band
	// over: past the limit.
	over
)

// Spell follows a duration rule ("over the limit for >= 2 h") in time
// rather than in readings, so that the verdict does not depend on how often
// the device reports:
//
//   - it begins with a reading over the limit (Start);
//   - the time between two readings counts when both stand over or in the
//     band (and the earlier one counted, see step's count): a lone reading
//     over the limit counts nothing, a bin alternating 91 / 89 % counts the
//     whole time, at any reporting rate;
//   - it ends only once readings stay under the clear level for the rule's
//     clear time, from the first of them (hysteresis in value and in time);
//   - a silence longer than the hold is a gap: the time across it does not
//     count, and a spell not yet raised starts over (no rule carries a
//     condition across a gap in the data).
type Spell struct {
	Start time.Time `json:",omitempty"`
	// Last is the newest reading of the spell, N how many it has.
	Last time.Time `json:",omitempty"`
	N    int       `json:",omitempty"`
	// Held is the time counted so far; Count whether the time from Last on
	// counts (the last reading stood over or in the band, and counted).
	Held  time.Duration `json:",omitempty"`
	Count bool          `json:",omitempty"`
	// Under is the first reading of an unbroken run under the clear level.
	Under  time.Time `json:",omitempty"`
	Raised bool      `json:",omitempty"`
	Key    string    `json:",omitempty"`
	Peak   float64   `json:",omitempty"`
	Curve  []sample  `json:",omitempty"`
}

// active reports whether a spell is under way.
func (s *Spell) active() bool { return !s.Start.IsZero() }

// step feeds one reading at t standing at lv; count says whether time at
// this level counts (overload counts only time spent moving). hold bounds the
// time between two readings that may count; clear is how long readings must
// stay under the clear level to end the spell. It reports ended when the
// spell is over (the caller resolves it if raised, then resets it); after a
// gap a spell not yet raised begins again from t.
func (s *Spell) step(t time.Time, lv level, count bool, hold, clear time.Duration) (ended bool) {
	if !s.active() {
		if lv == over {
			*s = Spell{Start: t, Last: t, N: 1, Count: count}
		}
		return false
	}
	if t.Before(s.Last) {
		return false // not in order: it proves nothing either way
	}
	dt := t.Sub(s.Last)
	if hold > 0 && dt > hold {
		if !s.Raised {
			*s = Spell{}
			return s.step(t, lv, count, hold, clear)
		}
		dt = 0 // a raised spell stays raised, but the gap does not count
		s.Count = false
	}
	if lv == under {
		if s.Under.IsZero() {
			s.Under = t
		}
		s.Last, s.N, s.Count = t, s.N+1, false
		return !t.Before(s.Under.Add(clear))
	}
	if s.Count && s.Under.IsZero() {
		s.Held += dt
	}
	s.Under = time.Time{}
	s.Last, s.N, s.Count = t, s.N+1, count
	return false
}

// counted is the time counted up to the last reading.
func (s *Spell) counted() time.Duration { return s.Held }

// clockCounted is the time counted up to now when the rule is judged from
// the clock: past the last reading it still counts (up to hold) once the
// spell has more than one reading standing over, so a silent bin that was
// full stays full until the gap bound.
func (s *Spell) clockCounted(now time.Time, hold time.Duration) time.Duration {
	if !s.active() {
		return 0
	}
	h := s.Held
	if s.Count && s.Under.IsZero() && s.N >= 2 && now.After(s.Last) {
		h += min(now.Sub(s.Last), hold)
	}
	return h
}

// holdFor is the longest silence a duration rule bridges: three expected
// intervals of the device, as device_offline counts, and at least a minute.
func (e *env) holdFor() time.Duration {
	h := time.Duration(float64(e.interval()) * max(e.dc.DeviceOffline.Factor, 1))
	return max(h, time.Minute)
}
