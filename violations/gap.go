package violations

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// gapWatch finds tracking gaps of a truck or sweeper: a silence of
// TrackingGap.MinSilence or more between two telemetry readings, during a
// trip. For a truck it also weighs the load across the gap (unaccounted_load).
// Nothing is placed inside a gap: the evidence is its two ends.
type gapWatch struct {
	// Last is the newest telemetry reading, as an end of a future gap.
	Last gapEnd `json:",omitempty"`
	// Open is a gap whose far end is still being read (its first fix, the
	// loads after it).
	Open *openGap `json:",omitempty"`
}

// gapEnd is one end of a gap: a reading's time, its accepted fix, whether
// the device was on a trip, and its load (trucks).
type gapEnd struct {
	T       time.Time `json:",omitempty"`
	Fix     fixPoint  `json:",omitempty"`
	On      bool      `json:",omitempty"`
	Load    float64   `json:",omitempty"`
	HasLoad bool      `json:",omitempty"`
}

type openGap struct {
	From, To gapEnd
	// Before is the load before the gap (median of the last samples), when
	// known; After the raw loads read since.
	Before    float64   `json:",omitempty"`
	HasBefore bool      `json:",omitempty"`
	After     []float64 `json:",omitempty"`
	// Decided: the tracking gap was judged (raised or not); Trip: it was
	// raised, under Key.
	Decided bool   `json:",omitempty"`
	Trip    bool   `json:",omitempty"`
	Key     string `json:",omitempty"`
}

// waitFar is how long after a gap its far end may take to show a fix and
// enough loads; past it the gap is judged on what there is.
const waitFar = 5 * time.Minute

// onTrip reports whether a reading shows the vehicle on a trip: its ignition
// on; for a device that reports no ignition (a sweeper), moving or brushing.
func onTrip(r *telemetry.Reading) bool {
	if ign, ok := r.Num("ignition"); ok {
		return ign != 0
	}
	speed, _ := r.Num("speed_kmh")
	brush, _ := r.Num("brush_on")
	return speed >= 3 || brush != 0
}

// silence reports the silence before r, if r follows an earlier reading.
func (g *gapWatch) silence(r *telemetry.Reading) time.Duration {
	if g.Last.T.IsZero() || !r.Time.After(g.Last.T) {
		return 0
	}
	return r.Time.Sub(g.Last.T)
}

// step follows one telemetry reading (in time order). before is the load
// before a gap that r ends (NaN when unknown).
func (g *gapWatch) step(e *env, r *telemetry.Reading, before float64) {
	c := &e.dc.TrackingGap
	end := gapEnd{T: r.Time, On: onTrip(r)}
	if lat, lon, ok := position(r); ok {
		end.Fix = fixPoint{T: r.Time, Lat: lat, Lon: lon}
	}
	end.Load, end.HasLoad = r.Num("load_kg")
	if sil := g.silence(r); !c.Disabled && sil >= c.MinSilence.D() {
		if g.Open != nil {
			g.finish(e) // a new gap before the last one's far end was read
		}
		g.Open = &openGap{From: g.Last, To: end, Before: before, HasBefore: !math.IsNaN(before)}
	}
	if !end.Fix.ok() && g.Last.Fix.ok() && r.Time.Sub(g.Last.Fix.T) < c.MinSilence.D() {
		end.Fix = g.Last.Fix // the last fix still stands for the near end of a later gap
	}
	g.Last = end
	if o := g.Open; o != nil {
		if !o.To.Fix.ok() && end.Fix.ok() && end.Fix.T.Equal(r.Time) {
			o.To.Fix = end.Fix
		}
		if end.HasLoad && len(o.After) < max(e.dc.UnaccountedLoad.Samples, 1) {
			o.After = append(o.After, end.Load)
		}
		g.judge(e, r.Time)
	}
}

// judge decides the open gap once its far end is known well enough.
func (g *gapWatch) judge(e *env, now time.Time) {
	o := g.Open
	late := now.Sub(o.To.T) >= waitFar
	if !o.Decided && (o.To.Fix.ok() || late) {
		o.Decided = true
		g.trackingGap(e)
	}
	need := max(e.dc.UnaccountedLoad.Samples, 1)
	if o.Decided && (len(o.After) >= need || late || e.state.Truck == nil) {
		g.finish(e)
	}
}

// tick judges an open gap whose far end went quiet before it was read
// well enough.
func (g *gapWatch) tick(e *env, now time.Time) {
	if g.Open != nil && now.Sub(g.Open.To.T) >= waitFar {
		g.finish(e)
	}
}

// finish judges the open gap on what there is, and forgets it.
func (g *gapWatch) finish(e *env) {
	o := g.Open
	if o == nil {
		return
	}
	if !o.Decided {
		o.Decided = true
		g.trackingGap(e)
	}
	g.Open = nil
	if o.Trip && e.state.Truck != nil {
		unaccountedLoad(e, o)
	}
}

// trackingGap raises tracking_gap for the open gap if it fell in a trip.
func (g *gapWatch) trackingGap(e *env) {
	o := g.Open
	c := &e.dc.TrackingGap
	moved := -1.0
	if o.From.Fix.ok() && o.To.Fix.ok() {
		moved = fleet.DistanceM(o.From.Fix.Lat, o.From.Fix.Lon, o.To.Fix.Lat, o.To.Fix.Lon)
	}
	bothOn := o.From.On && o.To.On
	if !bothOn && moved < c.MinDistanceM {
		return
	}
	o.Trip = true
	o.Key = makeKey(TrackingGap, e.state.ID, o.From.T)
	silence := o.To.T.Sub(o.From.T)
	why := "ignition on at both ends"
	if !bothOn {
		why = fmt.Sprintf("%.0f m apart across it", moved)
	} else if moved >= 0 {
		why += fmt.Sprintf(", %.0f m apart", moved)
	}
	v := Violation{Key: o.Key, Type: TrackingGap, Severity: Major, Start: o.From.T, End: o.To.T,
		Evidence: gapEvidence(o, moved),
		Summary:  fmt.Sprintf("%s sent nothing for %s during a trip (%s)", e.state.ID, silence.Round(time.Second), why)}
	if o.From.Fix.ok() {
		v.Lat, v.Lon, v.HasPos = o.From.Fix.Lat, o.From.Fix.Lon, true
	}
	e.emit(v)
}

// gapEvidence shows both ends of a gap as they were read.
func gapEvidence(o *openGap, moved float64) []Evidence {
	end := func(x gapEnd, note string) Evidence {
		ev := Evidence{Time: x.T, Fields: map[string]float64{"ignition_or_moving": b2f(x.On)}, Note: note}
		if x.Fix.ok() {
			ev.Fields["lat"], ev.Fields["lon"] = x.Fix.Lat, x.Fix.Lon
		}
		if x.HasLoad {
			ev.Fields["load_kg"] = x.Load
		}
		return ev
	}
	ev := []Evidence{end(o.From, "last reading before the gap"), end(o.To, "first reading after the gap")}
	f := map[string]float64{"silence_s": o.To.T.Sub(o.From.T).Seconds()}
	if moved >= 0 {
		f["distance_m"] = math.Round(moved)
	}
	return append(ev, Evidence{Time: o.To.T, Fields: f, Note: "the gap"})
}

// unaccountedLoad raises unaccounted_load when the truck's load after a
// tracking gap is lower by MinDropKG than before it and no site accepting
// its category was within reach (see UnaccountedLoadConfig); critical when
// a farm was.
func unaccountedLoad(e *env, o *openGap) {
	c := &e.dc.UnaccountedLoad
	if c.Disabled || !o.HasBefore || len(o.After) == 0 || e.cfg == nil || e.cfg.Map == nil {
		return
	}
	after := median(o.After, len(o.After))
	drop := o.Before - after
	if drop < c.MinDropKG || !o.From.Fix.ok() || !o.To.Fix.ok() {
		return // no drop, or no ends to reach from: nothing can be said
	}
	category := ""
	if e.dev != nil {
		category = e.dev.Category
	}
	budget := c.SpeedKmh / 3.6 * (o.To.T.Sub(o.From.T) - c.UnloadTime.D()).Seconds()
	var farms []string
	for i := range e.cfg.Map.Sites {
		s := &e.cfg.Map.Sites[i]
		if budget < 0 {
			break
		}
		d := siteDistanceM(s, o.From.Fix) + siteDistanceM(s, o.To.Fix)
		if d > budget {
			continue
		}
		if s.Kind != "farm" && s.AcceptsCategory(category) {
			return // it could have unloaded there
		}
		if s.Kind == "farm" {
			farms = append(farms, s.ID)
		}
	}
	sort.Strings(farms)
	v := Violation{Key: makeKey(UnaccountedLoad, e.state.ID, o.From.T), Type: UnaccountedLoad, Severity: Major,
		Start: o.From.T, End: o.To.T, Lat: o.From.Fix.Lat, Lon: o.From.Fix.Lon, HasPos: true,
		Evidence: append(gapEvidence(o, fleet.DistanceM(o.From.Fix.Lat, o.From.Fix.Lon, o.To.Fix.Lat, o.To.Fix.Lon)),
			Evidence{Time: o.To.T, Fields: map[string]float64{"load_before_kg": math.Round(o.Before),
				"load_after_kg": math.Round(after), "drop_kg": math.Round(drop), "reach_m": math.Round(math.Max(budget, 0))},
				Note: "load across the gap (medians) and the detour within reach"}),
		Summary: fmt.Sprintf("%s came back from %s of silence with %.0f kg less %s waste, and no site accepting it within reach",
			e.state.ID, o.To.T.Sub(o.From.T).Round(time.Second), drop, category)}
	if len(farms) > 0 {
		v.Severity, v.Site = Critical, farms[0]
		v.Summary += "; within reach of " + strings.Join(farms, ", ") + " (a farm)"
		v.Evidence = append(v.Evidence, Evidence{Time: o.To.T, Text: map[string]string{"farms": strings.Join(farms, ",")},
			Note: "farms within reach"})
	}
	e.emit(v)
}

// siteDistanceM is how far p is from a site: from its circle's edge, or from
// the box around its polygon (0 inside).
func siteDistanceM(s *fleet.Site, p fixPoint) float64 {
	if s.Area == nil {
		return math.Max(0, fleet.DistanceM(p.Lat, p.Lon, s.Center.Lat(), s.Center.Lon())-s.RadiusM)
	}
	b := s.Area.Bound()
	q := orb.Point{math.Max(b.Min.Lon(), math.Min(b.Max.Lon(), p.Lon)), math.Max(b.Min.Lat(), math.Min(b.Max.Lat(), p.Lat))}
	return fleet.DistanceM(p.Lat, p.Lon, q.Lat(), q.Lon())
}
