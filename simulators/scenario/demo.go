package scenario

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// Shift returns a copy of the scenario moved by d in time: the publish time
// and the reading time ("ts") of every message, and the truth. A day moved
// by other than whole days keeps its violations, but rules tied to the
// city's clock (route windows, the night leak window) then judge it at other
// hours.
func (s *Scenario) Shift(d time.Duration) (*Scenario, error) {
	out := &Scenario{Seed: s.Seed, From: s.From.Add(d), To: s.To.Add(d)}
	out.Messages = make([]Message, len(s.Messages))
	for i, m := range s.Messages {
		p, err := shiftPayload(m.Payload, d)
		if err != nil {
			return nil, fmt.Errorf("scenario: shift %s %s at %s: %w", m.Device, m.Channel, m.PublishAt, err)
		}
		m.Payload, m.PublishAt = p, m.PublishAt.Add(d)
		out.Messages[i] = m
	}
	out.Truth = make([]Expected, len(s.Truth))
	for i, x := range s.Truth {
		x.Start, x.End = x.Start.Add(d), x.End.Add(d)
		out.Truth[i] = x
	}
	out.NearMisses = append(out.NearMisses, s.NearMisses...)
	return out, nil
}

// shiftPayload moves the "ts" of a message's object, or of each object of
// an array.
func shiftPayload(p json.RawMessage, d time.Duration) (json.RawMessage, error) {
	var objs []map[string]any
	array := len(p) > 0 && p[0] == '['
	if array {
		if err := json.Unmarshal(p, &objs); err != nil {
			return nil, err
		}
	} else {
		var o map[string]any
		if err := json.Unmarshal(p, &o); err != nil {
			return nil, err
		}
		objs = []map[string]any{o}
	}
	for _, o := range objs {
		s, ok := o["ts"].(string)
		if !ok {
			return nil, fmt.Errorf("ts %v is not an RFC 3339 time", o["ts"])
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, err
		}
		o["ts"] = t.Add(d).UTC().Format(time.RFC3339Nano)
	}
	if array {
		return json.Marshal(objs)
	}
	return json.Marshal(objs[0])
}

// DemoLead is how long before now the demo's first violation has ended:
// longer than the detectors' default lateness, so that it is judged as soon
// as the readings of the last minutes are in, and well within a truck's
// upload delay, so that none of it is too late to be judged.
const DemoLead = 11 * time.Minute

// demoTypes are violations that a few minutes of one truck's readings prove.
var demoTypes = map[string]bool{"illegal_dumping": true, "wrong_site": true}

// Demo returns the scenario day of seed, shifted so that its first illegal
// dump (or wrong-site unload) ended DemoLead before now, and the time to
// play it from (five minutes before that violation began): played from
// there, the first case is filed within a minute whatever the hour, and the
// rest of the day follows live. shift is how far the day was moved; the
// days after it are to be moved as much.
func Demo(cfg *fleet.Config, seed uint64, now time.Time) (sc *Scenario, from time.Time, shift time.Duration, err error) {
	day, err := Generate(cfg, seed, now)
	if err != nil {
		return nil, time.Time{}, 0, err
	}
	for _, x := range day.Truth {
		if !demoTypes[x.Type] {
			continue
		}
		shift = now.Add(-DemoLead).Sub(x.End)
		sc, err = day.Shift(shift)
		if err != nil {
			return nil, time.Time{}, 0, err
		}
		return sc, x.Start.Add(shift - 5*time.Minute), shift, nil
	}
	return nil, time.Time{}, 0, fmt.Errorf("scenario: day %s of seed %d injects no illegal dump", day.From.Format("2006-01-02"), seed)
}
