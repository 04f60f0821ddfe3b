package violations

import (
	"fmt"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// binState holds the bin detectors: bin_overflow, bin_fire, bin_damaged
// (tilted or moved), sorting_contamination and low_battery.
type binState struct {
	Over   overflowRun
	Fire   fireRun
	Tilt   Spell
	Move   episode
	Contam episode
	Batt   episode
	// Last is the time of the newest telemetry reading: the same reading
	// again (a QoS 1 resend) is not counted twice.
	Last time.Time `json:",omitempty"`
}

// episode is the common life of a threshold rule: readings in a row over
// the limit (Hits, from Start), raised under Key, then readings in a row
// back within the hysteresis (Clear) that resolve it.
type episode struct {
	Hits   int       `json:",omitempty"`
	Start  time.Time `json:",omitempty"`
	Raised bool      `json:",omitempty"`
	Key    string    `json:",omitempty"`
	Clear  int       `json:",omitempty"`
	Curve  []sample  `json:",omitempty"`
}

// hit counts one reading over the limit.
func (ep *episode) hit(t time.Time) {
	if ep.Hits == 0 {
		ep.Start = t
	}
	ep.Hits++
	ep.Clear = 0
}

// miss is one reading under the limit: before the episode is raised it
// starts over.
func (ep *episode) miss() {
	if !ep.Raised {
		*ep = episode{}
	}
}

// resolve raises v again as resolved and forgets the episode.
func (ep *episode) resolve(e *env, v Violation) {
	v.Key, v.Start, v.Resolved = ep.Key, ep.Start, true
	e.emit(v)
	*ep = episode{}
}

// raise records the key and raises v.
func (ep *episode) raise(e *env, v Violation, subject string) {
	ep.Raised = true
	ep.Key = makeKey(v.Type, subject, ep.Start)
	v.Key, v.Start = ep.Key, ep.Start
	e.emit(v)
}

// overflowRun follows a full bin as a spell: fill_pct at or over MinFillPct
// begins it, readings at or over ClearFillPct keep it, readings under
// ClearFillPct for ClearAfter, or an emptied event, end it.
type overflowRun struct {
	Spell
	Major bool `json:",omitempty"`
}

// fireRun follows the temperatures of the last RiseWindow.
type fireRun struct {
	episode
	Temps []sample `json:",omitempty"`
}

func (b *binState) handle(e *env, r *telemetry.Reading) {
	switch r.Event {
	case "":
	case "emptied":
		b.overflowEnd(e, r, "emptied")
		return
	case "fire_alarm":
		b.fireAlarm(e, r)
		return
	default:
		return
	}
	if r.Time.Equal(b.Last) {
		return
	}
	b.Last = r.Time
	if v, ok := r.Num("fill_pct"); ok {
		b.overflowStep(e, r, v)
	}
	if v, ok := r.Num("temp_c"); ok {
		b.fireStep(e, r, v)
	}
	if v, ok := r.Num("tilt_deg"); ok {
		b.tiltStep(e, r, v)
	}
	if lat, lon, ok := position(r); ok {
		b.moveStep(e, r, lat, lon)
	}
	if v, ok := r.Num("contamination_pct"); ok {
		b.contamStep(e, r, v)
	}
	if v, ok := r.Num("battery_pct"); ok {
		b.battStep(e, r, v)
	}
}

func (b *binState) overflowStep(e *env, r *telemetry.Reading, fill float64) {
	c := &e.dc.BinOverflow
	o := &b.Over
	if c.Disabled {
		return
	}
	lv := under
	switch {
	case fill >= c.MinFillPct:
		lv = over
	case fill >= c.ClearFillPct:
		lv = band
	}
	if o.step(r.Time, lv, true, e.holdFor(), c.ClearAfter.D()) {
		b.overflowEnd(e, r, fmt.Sprintf("fill %.0f %%", fill))
		return
	}
	if o.active() && fill > o.Peak {
		o.Peak = fill
	}
	b.overflowJudge(e, r.Time)
}

func (b *binState) overflowEnd(e *env, r *telemetry.Reading, why string) {
	o := &b.Over
	if o.Raised {
		sev := Minor
		if o.Major {
			sev = Major
		}
		end := r.Time
		if !o.Under.IsZero() && r.Event == "" {
			end = o.Under
		}
		e.emit(Violation{Key: o.Key, Type: BinOverflow, Severity: sev, Start: o.Start, End: end, Resolved: true,
			Summary:  fmt.Sprintf("%s no longer full (%s)", e.state.ID, why),
			Evidence: []Evidence{evidence(r, why)}})
	}
	b.Over = overflowRun{}
}

func (b *binState) tick(e *env, t time.Time) {
	if e.dc.BinOverflow.Disabled || !b.Over.active() {
		return
	}
	b.overflowJudge(e, t)
}

// overflowJudge raises the overflow once the time counted reaches
// MinDuration, and makes it major at MajorAfter; from the clock, a full
// bin's last readings count up to the gap bound after them.
func (b *binState) overflowJudge(e *env, now time.Time) {
	c := &e.dc.BinOverflow
	o := &b.Over
	full := o.clockCounted(now, e.holdFor())
	// Made only when raised: the bin is judged on every reading and tick.
	ev := func() []Evidence {
		return []Evidence{{Time: o.Start, Fields: map[string]float64{"fill_pct": o.Peak}, Note: "full since"}}
	}
	if !o.Raised && full >= c.MinDuration.D() {
		o.Raised = true
		o.Key = makeKey(BinOverflow, e.state.ID, o.Start)
		e.emit(Violation{Key: o.Key, Type: BinOverflow, Severity: Minor, Start: o.Start, End: o.Start.Add(c.MinDuration.D()),
			Evidence: ev(), Summary: fmt.Sprintf("%s at or over %.0f %% full for %s without being emptied", e.state.ID,
				c.MinFillPct, c.MinDuration.D())})
	}
	if o.Raised && !o.Major && full >= c.MajorAfter.D() {
		o.Major = true
		e.emit(Violation{Key: o.Key, Type: BinOverflow, Severity: Major, Start: o.Start, End: o.Start.Add(c.MajorAfter.D()),
			Evidence: ev(), Summary: fmt.Sprintf("%s full for %s without being emptied", e.state.ID, c.MajorAfter.D())})
	}
}

func (b *binState) fireAlarm(e *env, r *telemetry.Reading) {
	f := &b.Fire
	if e.dc.BinFire.Disabled || f.Raised {
		return
	}
	f.Hits, f.Start = 1, r.Time
	f.raise(e, Violation{Type: BinFire, Severity: Critical, End: r.Time, Evidence: []Evidence{evidence(r, "fire alarm")},
		Summary: fmt.Sprintf("fire alarm in %s", e.state.ID)}, e.state.ID)
}

func (b *binState) fireStep(e *env, r *telemetry.Reading, temp float64) {
	c := &e.dc.BinFire
	f := &b.Fire
	if c.Disabled {
		return
	}
	low, haveLow := 0.0, false
	kept := f.Temps[:0]
	for _, s := range f.Temps {
		if r.Time.Sub(s.T) <= c.RiseWindow.D() {
			kept = append(kept, s)
			if !haveLow || s.V < low {
				low, haveLow = s.V, true
			}
		}
	}
	f.Temps = appendLowest(kept, sample{r.Time, temp}, c.RiseWindow.D())
	hot := temp >= c.MaxTempC || (haveLow && temp-low >= c.MinRiseC)
	if f.Raised {
		if r.Time.Before(f.Start) {
			return // from before an alarm handled ahead of its turn: it proves no cooling
		}
		if temp < c.ClearTempC && !hot {
			f.Clear++
			if f.Clear >= 2 {
				f.resolve(e, Violation{Type: BinFire, Severity: Critical, End: r.Time,
					Summary:  fmt.Sprintf("%s cooled to %.0f C", e.state.ID, temp),
					Evidence: []Evidence{evidence(r, "cooled down")}})
				f.Temps = []sample{{r.Time, temp}}
			}
		} else {
			f.Clear = 0
		}
		return
	}
	if !hot {
		f.Hits, f.Curve = 0, nil
		return
	}
	f.hit(r.Time)
	f.Curve = append(f.Curve, sample{r.Time, temp})
	if f.Hits < 2 {
		return
	}
	ev := samplesEvidence("temp_c", f.Temps, 8, "temperature")
	f.raise(e, Violation{Type: BinFire, Severity: Critical, End: r.Time, Evidence: ev,
		Summary: fmt.Sprintf("%s at %.0f C (limit %.0f C, or a rise of %.0f C within %s)", e.state.ID, temp, c.MaxTempC,
			c.MinRiseC, c.RiseWindow.D())}, e.state.ID)
}

func (b *binState) tiltStep(e *env, r *telemetry.Reading, tilt float64) {
	c := &e.dc.BinDamaged
	sp := &b.Tilt
	if c.Disabled {
		return
	}
	lv := under
	switch {
	case tilt >= c.MaxTiltDeg:
		lv = over
	case tilt >= c.ClearTiltDeg:
		lv = band
	}
	if sp.step(r.Time, lv, true, e.holdFor(), c.ClearAfter.D()) {
		if sp.Raised {
			e.emit(Violation{Key: sp.Key, Type: BinDamaged, Severity: Minor, Start: sp.Start, End: sp.Under, Resolved: true,
				Summary: fmt.Sprintf("%s upright again", e.state.ID), Evidence: []Evidence{evidence(r, "upright")}})
		}
		*sp = Spell{}
		return
	}
	if !sp.active() || sp.Raised {
		return
	}
	sp.Curve = appendCapped(sp.Curve, sample{r.Time, tilt}, 16)
	if sp.counted() < c.MinDuration.D() {
		return
	}
	sp.Raised = true
	sp.Key = makeKey(BinDamaged, e.state.ID, sp.Start)
	e.emit(Violation{Key: sp.Key, Type: BinDamaged, Severity: Minor, Start: sp.Start, End: sp.Start.Add(c.MinDuration.D()),
		Evidence: samplesEvidence("tilt_deg", sp.Curve, 8, "tilt"),
		Summary:  fmt.Sprintf("%s tilted %.0f degrees for %s (knocked over)", e.state.ID, tilt, c.MinDuration.D())})
}

func (b *binState) moveStep(e *env, r *telemetry.Reading, lat, lon float64) {
	c := &e.dc.BinDamaged
	ep := &b.Move
	hlat, hlon, ok := e.fixedPosition()
	if c.Disabled || !ok {
		return
	}
	d := fleet.DistanceM(hlat, hlon, lat, lon)
	if ep.Raised {
		if d < c.MaxMoveM*0.6 {
			ep.Clear++
			if ep.Clear >= 2 {
				ep.resolve(e, Violation{Type: BinDamaged, Severity: Minor, End: r.Time, Place: "moved",
					Summary:  fmt.Sprintf("%s back at its place", e.state.ID),
					Evidence: []Evidence{evidence(r, "back in place")}})
			}
		} else {
			ep.Clear = 0
		}
		return
	}
	if d <= c.MaxMoveM {
		ep.miss()
		return
	}
	ep.hit(r.Time)
	if ep.Hits < 2 {
		return
	}
	ep.raise(e, Violation{Type: BinDamaged, Severity: Minor, End: r.Time, Lat: lat, Lon: lon, HasPos: true, Place: "moved",
		Evidence: []Evidence{evidence(r, "away from its place"),
			{Time: r.Time, Fields: map[string]float64{"lat": hlat, "lon": hlon, "distance_m": d}, Note: "registered place"}},
		Summary: fmt.Sprintf("%s is %.0f m from its place", e.state.ID, d)}, e.state.ID+"/moved")
}

func (b *binState) contamStep(e *env, r *telemetry.Reading, pct float64) {
	c := &e.dc.SortingContamination
	ep := &b.Contam
	if c.Disabled {
		return
	}
	if ep.Raised {
		if pct < c.ClearPct {
			ep.Clear++
			if ep.Clear >= c.Readings {
				ep.resolve(e, Violation{Type: SortingContamination, Severity: Minor, End: r.Time,
					Summary:  fmt.Sprintf("%s sorted well again (%.0f %%)", e.state.ID, pct),
					Evidence: []Evidence{evidence(r, "clean")}})
			}
		} else {
			ep.Clear = 0
		}
		return
	}
	if pct < c.MinPct {
		ep.miss()
		return
	}
	ep.hit(r.Time)
	ep.Curve = appendCapped(ep.Curve, sample{r.Time, pct}, c.Readings)
	if ep.Hits < c.Readings {
		return
	}
	ep.raise(e, Violation{Type: SortingContamination, Severity: Minor, End: r.Time,
		Evidence: samplesEvidence("contamination_pct", ep.Curve, c.Readings, "contamination"),
		Summary:  fmt.Sprintf("%s: %d readings in a row with %.0f %% or more wrongly sorted waste", e.state.ID, c.Readings, c.MinPct)},
		e.state.ID)
}

func (b *binState) battStep(e *env, r *telemetry.Reading, pct float64) {
	batteryStep(e, &b.Batt, r, pct)
}

// batteryStep is low_battery, for any kind that reports battery_pct.
func batteryStep(e *env, ep *episode, r *telemetry.Reading, pct float64) {
	c := &e.dc.LowBattery
	if c.Disabled {
		return
	}
	if ep.Raised {
		if pct >= c.ClearPct {
			ep.resolve(e, Violation{Type: LowBattery, Severity: Minor, End: r.Time,
				Summary:  fmt.Sprintf("%s battery at %.0f %%", e.state.ID, pct),
				Evidence: []Evidence{evidence(r, "charged or replaced")}})
		}
		return
	}
	if pct >= c.MinPct {
		ep.miss()
		return
	}
	ep.hit(r.Time)
	if ep.Hits < 2 {
		return
	}
	ep.raise(e, Violation{Type: LowBattery, Severity: Minor, End: r.Time, Evidence: []Evidence{evidence(r, "low battery")},
		Summary: fmt.Sprintf("%s battery at %.0f %%, under %.0f %%", e.state.ID, pct, c.MinPct)}, e.state.ID)
}
