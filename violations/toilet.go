package violations

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// toiletState holds the toilet detectors: toilet_odour, toilet_consumables,
// toilet_safety, toilet_leak and toilet_cold.
type toiletState struct {
	Odour  odourRun
	Supply episode
	Help   time.Time `json:",omitempty"` // last help button raised
	Occ    Spell
	People float64 `json:",omitempty"` // people_in when the occupancy began
	Leak   episode
	LeakL0 float64 `json:",omitempty"`
	Cold   Spell
	Prev   toiletPrev
	// Last is the time of the newest telemetry reading: the same reading
	// again (a QoS 1 resend) is not counted twice.
	Last time.Time `json:",omitempty"`
}

// odourRun is the odour spell and the highest value of each gas in it, so
// that the case names the gas that crossed its limit.
type odourRun struct {
	Spell
	NH3 []sample `json:",omitempty"`
	H2S []sample `json:",omitempty"`
	// MaxNH3 and MaxH2S are the highest readings of the spell.
	MaxNH3 float64 `json:",omitempty"`
	MaxH2S float64 `json:",omitempty"`
}

// toiletPrev is the previous telemetry reading's meters.
type toiletPrev struct {
	T      time.Time `json:",omitempty"`
	Water  float64   `json:",omitempty"`
	People float64   `json:",omitempty"`
}

func (e *env) class() int {
	if e.dev != nil && e.dev.Class > 0 {
		return e.dev.Class
	}
	return 2
}

func (t *toiletState) handle(e *env, r *telemetry.Reading) {
	switch r.Event {
	case "":
	case "help_button":
		t.help(e, r)
		return
	default:
		return
	}
	if r.Time.Equal(t.Last) {
		return
	}
	t.Last = r.Time
	nh3, okN := r.Num("nh3_mgm3")
	h2s, okH := r.Num("h2s_mgm3")
	if okN || okH {
		t.odourStep(e, r, nh3, h2s, okN, okH)
	}
	paper, okP := r.Num("paper_pct")
	soap, okS := r.Num("soap_pct")
	if okP || okS {
		if !okP {
			paper = 100
		}
		if !okS {
			soap = 100
		}
		t.supplyStep(e, r, paper, soap)
	}
	stalls, okSt := r.Num("stalls_occupied")
	people, okPe := r.Num("people_in")
	if okSt && okPe {
		t.occupiedStep(e, r, stalls, people)
	}
	if water, ok := r.Num("water_l"); ok && okSt && okPe {
		t.leakStep(e, r, water, people, stalls)
		t.Prev = toiletPrev{T: r.Time, Water: water, People: people}
	}
	if temp, ok := r.Num("temp_c"); ok {
		t.coldStep(e, r, temp)
	}
}

func (t *toiletState) odourStep(e *env, r *telemetry.Reading, nh3, h2s float64, okN, okH bool) {
	c := &e.dc.ToiletOdour
	o := &t.Odour
	if c.Disabled {
		return
	}
	limit := c.MaxNH3[e.class()]
	overN, overH := okN && nh3 > limit, okH && h2s > c.MaxH2S
	lv := band
	switch {
	case overN || overH:
		lv = over
	case (!okN || nh3 <= limit*0.9) && (!okH || h2s <= c.MaxH2S*0.9):
		lv = under
	}
	if o.step(r.Time, lv, true, e.holdFor(), c.ClearDuration.D()) {
		if o.Raised {
			e.emit(Violation{Key: o.Key, Type: ToiletOdour, Severity: Major, Start: o.Start, End: o.Under, Resolved: true,
				Summary:  fmt.Sprintf("%s under the odour limits for %s", e.state.ID, c.ClearDuration.D()),
				Evidence: append(t.odourEvidence(), evidence(r, "under the limits"))})
		}
		t.Odour = odourRun{}
		return
	}
	if !o.active() {
		return
	}
	if okN {
		o.NH3 = appendCapped(o.NH3, sample{r.Time, nh3}, 240)
		o.MaxNH3 = math.Max(o.MaxNH3, nh3)
	}
	if okH {
		o.H2S = appendCapped(o.H2S, sample{r.Time, h2s}, 240)
		o.MaxH2S = math.Max(o.MaxH2S, h2s)
	}
	if o.Raised || o.counted() < c.MinDuration.D() {
		return
	}
	// Name the gas (or both) that crossed its limit, with the highest value.
	var crossed []string
	if o.MaxNH3 > limit {
		crossed = append(crossed, fmt.Sprintf("NH3 %.2f > %.2f mg/m3", o.MaxNH3, limit))
	}
	if o.MaxH2S > c.MaxH2S {
		crossed = append(crossed, fmt.Sprintf("H2S %.3f > %.3f mg/m3", o.MaxH2S, c.MaxH2S))
	}
	o.Raised = true
	o.Key = makeKey(ToiletOdour, e.state.ID, o.Start)
	e.emit(Violation{Key: o.Key, Type: ToiletOdour, Severity: Major, Start: o.Start, End: o.Start.Add(c.MinDuration.D()),
		Evidence: append(t.odourEvidence(), evidence(r, "latest reading")),
		Summary: fmt.Sprintf("%s (class %d) over the odour limit for %s: %s", e.state.ID, e.class(), c.MinDuration.D(),
			strings.Join(crossed, " and "))})
}

// odourEvidence is the curve of each gas that crossed its limit.
func (t *toiletState) odourEvidence() []Evidence {
	o := &t.Odour
	var ev []Evidence
	if len(o.NH3) > 0 && o.MaxNH3 > 0 {
		ev = append(ev, samplesEvidence("nh3_mgm3", o.NH3, 24, "ammonia")...)
	}
	if len(o.H2S) > 0 && o.MaxH2S > 0 {
		ev = append(ev, samplesEvidence("h2s_mgm3", o.H2S, 24, "hydrogen sulphide")...)
	}
	return ev
}

func (t *toiletState) supplyStep(e *env, r *telemetry.Reading, paper, soap float64) {
	c := &e.dc.ToiletConsumables
	ep := &t.Supply
	if c.Disabled {
		return
	}
	if ep.Raised {
		if paper >= c.ClearPct && soap >= c.ClearPct {
			ep.resolve(e, Violation{Type: ToiletConsumables, Severity: Minor, End: r.Time,
				Summary: fmt.Sprintf("%s refilled", e.state.ID), Evidence: []Evidence{evidence(r, "refilled")}})
		}
		return
	}
	if paper >= c.MinPct && soap >= c.MinPct {
		ep.miss()
		return
	}
	ep.hit(r.Time)
	if ep.Hits < 2 {
		return
	}
	ep.raise(e, Violation{Type: ToiletConsumables, Severity: Minor, End: r.Time, Evidence: []Evidence{evidence(r, "running out")},
		Summary: fmt.Sprintf("%s running out: paper %.0f %%, soap %.0f %% (limit %.0f %%)", e.state.ID, paper, soap, c.MinPct)},
		e.state.ID)
}

// helpRepeat is how long repeated presses of a help button count as one call.
const helpRepeat = 10 * time.Minute

func (t *toiletState) help(e *env, r *telemetry.Reading) {
	if e.dc.ToiletSafety.Disabled || (!t.Help.IsZero() && r.Time.Sub(t.Help) < helpRepeat) {
		return
	}
	t.Help = r.Time
	e.emit(Violation{Key: makeKey(ToiletSafety, e.state.ID+"/help", r.Time), Type: ToiletSafety, Severity: Critical,
		Start: r.Time, End: r.Time, Evidence: []Evidence{evidence(r, "help button")},
		Summary: fmt.Sprintf("help button pressed in %s", e.state.ID)})
}

// occupiedStep: with only a count of occupied stalls, a stall is known to be
// occupied by one person for the whole span when a stall stays occupied and
// nobody has entered since (people_in unchanged). The time counts between
// readings that both show it, bridging no gap longer than the hold.
func (t *toiletState) occupiedStep(e *env, r *telemetry.Reading, stalls, people float64) {
	c := &e.dc.ToiletSafety
	sp := &t.Occ
	if c.Disabled {
		return
	}
	if stalls < 1 {
		if sp.Raised {
			e.emit(Violation{Key: sp.Key, Type: ToiletSafety, Severity: Critical, Start: sp.Start, End: r.Time, Resolved: true,
				Summary: fmt.Sprintf("%s: no stall occupied any more", e.state.ID), Evidence: []Evidence{evidence(r, "stalls free")}})
		}
		*sp = Spell{}
		return
	}
	if sp.Raised {
		return
	}
	if !sp.active() || people != t.People {
		*sp = Spell{}
		t.People = people
	}
	sp.step(r.Time, over, true, e.holdFor(), 0)
	if sp.counted() < c.MaxOccupied.D() {
		return
	}
	sp.Raised = true
	sp.Key = makeKey(ToiletSafety, e.state.ID+"/occupied", sp.Start)
	e.emit(Violation{Key: sp.Key, Type: ToiletSafety, Severity: Critical, Start: sp.Start, End: sp.Start.Add(c.MaxOccupied.D()),
		Evidence: []Evidence{{Time: sp.Start, Fields: map[string]float64{"stalls_occupied": stalls, "people_in": people},
			Note: "occupied since, nobody entered after"}, evidence(r, "still occupied")},
		Summary: fmt.Sprintf("%s: a stall occupied for %s with nobody entering", e.state.ID, c.MaxOccupied.D())})
}

// inNight reports whether t falls in the leak window, in city time.
func (e *env) inNight(t time.Time) bool {
	loc := time.UTC
	if e.cfg != nil {
		loc = e.loc
	}
	lt := t.In(loc)
	off := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second
	return (off >= e.night[0] && off < e.night[1]) || off+24*time.Hour < e.night[1]
}

func (t *toiletState) leakStep(e *env, r *telemetry.Reading, water, people, stalls float64) {
	c := &e.dc.ToiletLeak
	ep := &t.Leak
	p := t.Prev
	if c.Disabled || p.T.IsZero() || r.Time.Sub(p.T) > 10*time.Minute {
		if !ep.Raised {
			*ep = episode{}
		}
		return
	}
	flow := water-p.Water > 0.05
	empty := people == p.People && stalls == 0
	if ep.Raised {
		if flow && empty {
			ep.Clear = 0
			return
		}
		ep.Clear++
		if ep.Clear >= 2 {
			ep.resolve(e, Violation{Type: ToiletLeak, Severity: Minor, End: r.Time,
				Summary: fmt.Sprintf("%s: water stopped or someone came in", e.state.ID), Evidence: []Evidence{evidence(r, "no leak")}})
		}
		return
	}
	if !flow || !empty || !e.inNight(r.Time) {
		*ep = episode{}
		return
	}
	if ep.Hits == 0 {
		ep.hit(p.T)
		t.LeakL0 = p.Water
	}
	ep.Hits++
	litres := water - t.LeakL0
	if r.Time.Sub(ep.Start) < c.MinDuration.D() || litres < c.MinLitres {
		return
	}
	ep.raise(e, Violation{Type: ToiletLeak, Severity: Minor, End: ep.Start.Add(c.MinDuration.D()),
		Evidence: []Evidence{{Time: ep.Start, Fields: map[string]float64{"water_l": t.LeakL0, "people_in": people}, Note: "flow began, nobody inside"},
			evidence(r, "still flowing")},
		Summary: fmt.Sprintf("%s: %.0f l of water in %s at night with nobody inside", e.state.ID, litres,
			r.Time.Sub(ep.Start).Round(time.Minute))}, e.state.ID)
}

func (t *toiletState) coldStep(e *env, r *telemetry.Reading, temp float64) {
	c := &e.dc.ToiletCold
	sp := &t.Cold
	if c.Disabled {
		return
	}
	limit := c.MinTempC
	if e.class() == 1 {
		limit = c.MinTempClass1C
	}
	lv := band
	switch {
	case temp < limit:
		lv = over
	case temp >= limit+c.ClearMarginC:
		lv = under
	}
	if sp.step(r.Time, lv, true, e.holdFor(), c.ClearAfter.D()) {
		if sp.Raised {
			e.emit(Violation{Key: sp.Key, Type: ToiletCold, Severity: Minor, Start: sp.Start, End: sp.Under, Resolved: true,
				Summary: fmt.Sprintf("%s warm again (%.1f C)", e.state.ID, temp), Evidence: []Evidence{evidence(r, "warm")}})
		}
		*sp = Spell{}
		return
	}
	if !sp.active() || sp.Raised {
		return
	}
	sp.Curve = appendCapped(sp.Curve, sample{r.Time, temp}, 120)
	if sp.counted() < c.MinDuration.D() {
		return
	}
	sp.Raised = true
	sp.Key = makeKey(ToiletCold, e.state.ID, sp.Start)
	e.emit(Violation{Key: sp.Key, Type: ToiletCold, Severity: Minor, Start: sp.Start, End: sp.Start.Add(c.MinDuration.D()),
		Evidence: samplesEvidence("temp_c", sp.Curve, 12, "room temperature"),
		Summary: fmt.Sprintf("%s (class %d) at %.1f C, under %.0f C for %s", e.state.ID, e.class(), temp, limit,
			c.MinDuration.D())})
}
