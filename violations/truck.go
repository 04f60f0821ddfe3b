package violations

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// truckState holds the truck detectors: illegal_dumping and wrong_site (a
// load drop while stopped), spillage (a drop while driving), overload,
// mixed_collection and missed_route for collection routes.
type truckState struct {
	// Raw is the latest raw load_kg samples, for the running medians.
	Raw []float64 `json:",omitempty"`
	// Fix is the last position the GPS filters accepted.
	Fix    fixPoint `json:",omitempty"`
	Stop   stopRun
	Seg    driveRun
	Over   overRun
	Routes map[string]*collectRun `json:",omitempty"`
	// Gap watches for tracking gaps and the load across them.
	Gap gapWatch
}

type fixPoint struct {
	T        time.Time `json:",omitempty"`
	Lat, Lon float64   `json:",omitempty"`
}

func (f fixPoint) ok() bool { return !f.T.IsZero() }

// median of the last n values of raw.
func median(raw []float64, n int) float64 {
	if len(raw) < n {
		n = len(raw)
	}
	var buf [16]float64
	s := buf[:0]
	if n > len(buf) {
		s = make([]float64, 0, n)
	}
	s = append(s, raw[len(raw)-n:]...)
	sort.Float64s(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (t *truckState) handle(e *env, r *telemetry.Reading) {
	if r.Event != "" {
		t.event(e, r)
		return
	}
	if t.Gap.Last.T.Equal(r.Time) {
		return // the same reading again (a QoS 1 resend): the load is not counted twice
	}
	if sil := t.Gap.silence(r); sil >= e.dc.TrackingGap.ResetAfter.D() && e.dc.TrackingGap.ResetAfter > 0 {
		before := math.NaN()
		if n := min(len(t.Raw), max(e.dc.UnaccountedLoad.Samples, 1)); n > 0 {
			before = median(t.Raw, n)
		}
		t.resetLoad(e)
		t.Gap.step(e, r, before)
	} else {
		t.Gap.step(e, r, math.NaN())
	}
	if lat, lon, ok := position(r); ok {
		t.Fix = fixPoint{T: r.Time, Lat: lat, Lon: lon}
	}
	load, hasLoad := r.Num("load_kg")
	speed, hasSpeed := r.Num("speed_kmh")
	if !hasLoad || !hasSpeed {
		return
	}
	keep := max(e.dc.LoadSmoothing, e.dc.Spillage.Smoothing)
	t.Raw = append(t.Raw, load)
	if len(t.Raw) > keep {
		n := copy(t.Raw, t.Raw[len(t.Raw)-keep:])
		t.Raw = t.Raw[:n]
	}
	smooth := median(t.Raw, e.dc.LoadSmoothing)
	tipper, _ := r.Num("tipper")
	t.stopStep(e, r, speed, smooth, tipper != 0)
	t.driveStep(e, r, speed, load, tipper != 0)
	t.overStep(e, r, speed, smooth)
}

// resetLoad forgets the load history after a gap in the data: no running
// median, stop or drive is carried across it, and a drop found before the
// gap is judged on what was read before it.
func (t *truckState) resetLoad(e *env) {
	if t.Stop.Drop != nil {
		t.finishDrop(e, t.Gap.Last.T)
	}
	t.Raw = nil
	t.Stop = stopRun{}
	t.Seg = driveRun{}
}

// stopRun follows a stop (speed under IllegalDumping.MaxSpeedKmh) and the
// smoothed load over it, to find a drop of MinDropKG within Window.
type stopRun struct {
	Stopped bool      `json:",omitempty"`
	Since   time.Time `json:",omitempty"`
	// Ref is the smoothed load just before the stop; Hist the highest
	// smoothed load of each slot of Window (appendHighest), so its length
	// is bounded whatever the reporting rate.
	Ref    sample   `json:",omitempty"`
	Hist   []sample `json:",omitempty"`
	SumLat float64  `json:",omitempty"`
	SumLon float64  `json:",omitempty"`
	NFix   int      `json:",omitempty"`
	Tipper bool     `json:",omitempty"`
	Events []string `json:",omitempty"`
	// Drop is a drop found and not yet reported.
	Drop *pendingDrop `json:",omitempty"`
	Last sample       `json:",omitempty"` // smoothed load of the previous sample
}

type pendingDrop struct {
	Start time.Time
	From  float64
	Min   sample
	Curve []sample
}

func (t *truckState) stopStep(e *env, r *telemetry.Reading, speed, smooth float64, tipper bool) {
	s := &t.Stop
	c := &e.dc.IllegalDumping
	stopped := speed < c.MaxSpeedKmh
	if !stopped {
		if s.Stopped {
			t.finishDrop(e, r.Time)
			*s = stopRun{}
		}
		s.Last = sample{r.Time, smooth}
		return
	}
	if !s.Stopped {
		*s = stopRun{Stopped: true, Since: r.Time, Ref: s.Last}
		if s.Ref.T.IsZero() {
			s.Ref = sample{r.Time, smooth}
		}
	}
	s.Last = sample{r.Time, smooth}
	if lat, lon, ok := position(r); ok {
		s.SumLat += lat
		s.SumLon += lon
		s.NFix++
	}
	s.Tipper = s.Tipper || tipper
	if s.Drop != nil {
		s.Drop.Curve = appendCapped(s.Drop.Curve, sample{r.Time, smooth}, 120)
		if smooth < s.Drop.Min.V {
			s.Drop.Min = sample{r.Time, smooth}
		}
		if r.Time.Sub(s.Drop.Start) >= c.Window.D() {
			t.finishDrop(e, r.Time)
		}
		return
	}
	// The highest smoothed load within the window before this sample.
	win := c.Window.D()
	hist := s.Hist[:0]
	for _, h := range s.Hist {
		if r.Time.Sub(h.T) <= win {
			hist = append(hist, h)
		}
	}
	now := sample{r.Time, smooth}
	s.Hist = appendHighest(hist, now, win)
	top := s.Ref
	if r.Time.Sub(top.T) > win {
		top = sample{}
	}
	for _, h := range s.Hist {
		if top.T.IsZero() || h.V > top.V {
			top = h
		}
	}
	if !top.T.IsZero() && top.V-smooth >= c.MinDropKG {
		curve := []sample{top}
		for _, h := range s.Hist {
			if h.T.After(top.T) {
				curve = append(curve, h)
			}
		}
		if last := curve[len(curve)-1]; last.T.Before(now.T) {
			curve = append(curve, now) // merged into the slot of a higher one
		}
		s.Drop = &pendingDrop{Start: top.T, From: top.V, Min: sample{r.Time, smooth}, Curve: curve}
		s.Hist = nil
		s.Ref = sample{r.Time, smooth}
	}
}

// finishDrop classifies a drop found during the stop by where the truck
// stood: legal in a site that accepts its category, wrong_site in another
// disposal site, illegal_dumping anywhere else (critical in a farm).
func (t *truckState) finishDrop(e *env, now time.Time) {
	s := &t.Stop
	d := s.Drop
	if d == nil {
		return
	}
	s.Drop = nil
	s.Ref = s.Last
	var lat, lon float64
	switch {
	case s.NFix > 0:
		lat, lon = s.SumLat/float64(s.NFix), s.SumLon/float64(s.NFix)
	case t.Fix.ok() && now.Sub(t.Fix.T) < 10*time.Minute:
		lat, lon = t.Fix.Lat, t.Fix.Lon
	default:
		return // nowhere to place it: a dump cannot be told from an unload
	}
	category := ""
	if e.dev != nil {
		category = e.dev.Category
	}
	loc := e.locate(lat, lon)
	var wrong, farm *fleet.Site
	for _, id := range loc.Sites {
		site, ok := e.cfg.Map.Site(id)
		if !ok {
			continue
		}
		if site.AcceptsCategory(category) {
			return // a legal unload
		}
		if site.Kind == "farm" && farm == nil {
			farm = site
		}
		for _, k := range e.dc.WrongSite.SiteKinds {
			if site.Kind == k && wrong == nil {
				wrong = site
			}
		}
	}
	dropKG := d.From - d.Min.V
	ev := samplesEvidence("load_kg", d.Curve, 16, "smoothed load (median)")
	if len(ev) > 0 {
		ev[0].Note = "before the drop: smoothed load"
		ev[len(ev)-1].Note = "after the drop: smoothed load"
	}
	ev = append(ev, Evidence{Time: s.Since, Fields: map[string]float64{"lat": lat, "lon": lon, "drop_kg": math.Round(dropKG),
		"tipper": b2f(s.Tipper)}, Note: "stop position (mean of good fixes) and drop"})
	if len(s.Events) > 0 {
		ev = append(ev, Evidence{Time: s.Since, Text: map[string]string{"events": strings.Join(s.Events, ",")},
			Note: "events reported during the stop"})
	}
	v := Violation{Start: d.Start, End: d.Min.T, Lat: lat, Lon: lon, HasPos: true, District: loc.District, Evidence: ev}
	switch {
	case wrong != nil && farm == nil:
		if e.dc.WrongSite.Disabled {
			return
		}
		v.Type, v.Severity, v.Site = WrongSite, Major, wrong.ID
		v.Summary = fmt.Sprintf("%s unloaded %.0f kg of %s waste at %s (%s), which does not accept it", e.state.ID, dropKG, category, wrong.ID, wrong.Kind)
	default:
		if e.dc.IllegalDumping.Disabled {
			return
		}
		v.Type, v.Severity = IllegalDumping, Major
		where := "outside every site that accepts it"
		if farm != nil {
			v.Severity, v.Site = Critical, farm.ID
			where = "at " + farm.ID + " (a farm)"
		}
		v.Summary = fmt.Sprintf("%s dropped %.0f kg of %s waste while stopped, %s", e.state.ID, dropKG, category, where)
	}
	e.emit(v)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// driveRun follows a stretch driven at speed with the tipper off, for
// spillage: the load must fall by MinDropKG between two points at least
// MinDistanceM apart.
type driveRun struct {
	LastMove time.Time `json:",omitempty"`
	Raw      []float64 `json:",omitempty"` // raw loads of this stretch
	// Pts are the smoothed loads along the stretch, at most one a slot of
	// MinDistanceM/windowSlots ahead of Ref; behind it only the highest
	// (Pts[0] = Pts[Top]) and a thinned line to it for the evidence
	// (drive.go).
	Pts     []drivePt `json:",omitempty"`
	DistM   float64   `json:",omitempty"`
	Ref     int       `json:",omitempty"` // Pts[:Ref] are MinDistanceM behind
	Top     int       `json:",omitempty"` // index of the highest of Pts[:Ref]
	Hits    int       `json:",omitempty"` // consecutive points over the drop
	Raised  bool      `json:",omitempty"`
	LastFix fixPoint  `json:",omitempty"`
}

type drivePt struct {
	T        time.Time
	DistM    float64
	Load     float64
	Lat, Lon float64
}

const maxGapDrive = 60 * time.Second

func (t *truckState) driveStep(e *env, r *telemetry.Reading, speed, load float64, tipper bool) {
	c := &e.dc.Spillage
	g := &t.Seg
	if c.Disabled {
		return
	}
	lat, lon, ok := position(r)
	if tipper || (!g.LastMove.IsZero() && r.Time.Sub(g.LastMove) > maxGapDrive) {
		*g = driveRun{}
	}
	if speed < c.MinSpeedKmh || !ok {
		return
	}
	g.LastMove = r.Time
	if g.LastFix.ok() {
		g.DistM += fleet.DistanceM(g.LastFix.Lat, g.LastFix.Lon, lat, lon)
	}
	g.LastFix = fixPoint{T: r.Time, Lat: lat, Lon: lon}
	g.Raw = append(g.Raw, load)
	if len(g.Raw) > c.Smoothing {
		n := copy(g.Raw, g.Raw[len(g.Raw)-c.Smoothing:])
		g.Raw = g.Raw[:n]
	}
	if len(g.Raw) < c.Smoothing || g.Raised {
		return
	}
	p := drivePt{T: r.Time, DistM: g.DistM, Load: median(g.Raw, c.Smoothing), Lat: lat, Lon: lon}
	g.add(p, c.MinDistanceM)
	if g.Ref == 0 || g.Pts[g.Top].Load-p.Load < c.MinDropKG {
		g.Hits = 0
		return
	}
	g.Hits++
	if g.Hits < 2 {
		return
	}
	g.Raised = true
	top := g.Pts[g.Top]
	var line orb.LineString
	var curve []sample
	pts := g.Pts[g.Top:]
	if pts[len(pts)-1].T.Before(p.T) {
		pts = append(pts, p) // p was merged into the slot of a higher point
	}
	for _, q := range pts {
		line = append(line, orb.Point{q.Lon, q.Lat})
		curve = append(curve, sample{q.T, q.Load})
	}
	fc := geojson.NewFeatureCollection()
	f := geojson.NewFeature(line)
	f.Properties["length_m"] = math.Round(p.DistM - top.DistM)
	fc.Append(f)
	geo, _ := json.Marshal(fc)
	ev := samplesEvidence("load_kg", curve, 16, "smoothed load while driving")
	ev[0].Note = "before the loss: smoothed load"
	ev[len(ev)-1].Note = "after the loss: smoothed load"
	drop := top.Load - p.Load
	e.emit(Violation{Type: Spillage, Severity: Major, Start: top.T, End: p.T, Lat: p.Lat, Lon: p.Lon, HasPos: true,
		Geometry: geo, Evidence: ev, Summary: fmt.Sprintf("%s lost %.0f kg over %.1f km while driving with the tipper off",
			e.state.ID, drop, (p.DistM-top.DistM)/1000)})
}

// overRun follows an overload as a spell: it begins with a moving sample
// whose smoothed load is over capacity x Factor; the time counts while the
// truck moves (at MovingKmh or more) with the load over capacity x
// ClearFactor, and it ends with a sample under that.
type overRun struct {
	Spell
}

func (t *truckState) overStep(e *env, r *telemetry.Reading, speed, smooth float64) {
	c := &e.dc.Overload
	if c.Disabled || e.dev == nil || e.dev.CapacityKG <= 0 {
		return
	}
	o := &t.Over
	capKG := e.dev.CapacityKG
	moving := speed >= c.MovingKmh
	lv := under
	switch {
	case smooth > capKG*c.Factor:
		lv = over
	case smooth >= capKG*c.ClearFactor:
		lv = band
	}
	if !o.active() && !moving {
		return // it begins on the road
	}
	if o.step(r.Time, lv, moving, e.holdFor(), 0) {
		if o.Raised {
			e.emit(Violation{Key: o.Key, Type: Overload, Severity: Major, Start: o.Start, End: r.Time, Resolved: true,
				Summary:  fmt.Sprintf("%s back under its capacity (%.0f kg)", e.state.ID, smooth),
				Evidence: []Evidence{evidence(r, "first reading under capacity")}})
		}
		*o = overRun{}
		return
	}
	if !o.active() {
		return
	}
	o.Peak = math.Max(o.Peak, smooth)
	if o.Raised || o.counted() < c.MinDuration.D() {
		return
	}
	o.Raised = true
	o.Key = makeKey(Overload, e.state.ID, o.Start)
	v := Violation{Key: o.Key, Type: Overload, Severity: Major, Start: o.Start, End: o.Start.Add(c.MinDuration.D()),
		Summary: fmt.Sprintf("%s drove with %.0f kg, over %.0f %% of its %.0f kg capacity, for %s", e.state.ID, o.Peak,
			c.Factor*100, capKG, c.MinDuration.D()),
		Evidence: []Evidence{evidence(r, "moving over capacity")}}
	if lat, lon, ok := position(r); ok {
		v.Lat, v.Lon, v.HasPos = lat, lon, true
	}
	e.emit(v)
}

// event handles the truck's events: pickups (mixed_collection, routes).
func (t *truckState) event(e *env, r *telemetry.Reading) {
	if t.Stop.Stopped {
		t.Stop.Events = append(t.Stop.Events, r.Event)
	}
	if r.Event != "pickup" {
		return
	}
	f, _ := r.Get("bin")
	bin := f.Str
	if bin == "" {
		return
	}
	for _, run := range t.Routes {
		if !r.Time.Before(run.Start) && r.Time.Before(run.End) {
			if run.Picked == nil {
				run.Picked = map[string]time.Time{}
			}
			if _, dup := run.Picked[bin]; !dup {
				run.Picked[bin] = r.Time
			}
		}
	}
	if e.dc.MixedCollection.Disabled || e.dev == nil {
		return
	}
	bd := e.lookup(bin)
	if bd == nil || bd.Category == "" || bd.Category == e.dev.Category {
		return
	}
	v := Violation{Key: makeKey(MixedCollection, e.state.ID+"/"+bin, r.Time), Type: MixedCollection, Severity: Major,
		Start: r.Time, End: r.Time, Place: bin, Category: e.dev.Category,
		Summary:  fmt.Sprintf("%s (%s) picked up %s, a %s bin", e.state.ID, e.dev.Category, bin, bd.Category),
		Evidence: []Evidence{evidence(r, "pickup")}}
	if lat, lon, ok := position(r); ok {
		v.Lat, v.Lon, v.HasPos = lat, lon, true
	} else if bd.Lat != nil && bd.Lon != nil {
		v.Lat, v.Lon, v.HasPos = *bd.Lat, *bd.Lon, true
	}
	e.emit(v)
}

// collectRun is one occurrence of a collection route's window.
type collectRun struct {
	Start, End time.Time
	Picked     map[string]time.Time `json:",omitempty"`
}

func (t *truckState) tick(e *env, now time.Time) {
	t.Gap.tick(e, now)
	if e.cfg == nil || e.cfg.Map == nil {
		return
	}
	for _, rt := range e.collect {
		if t.Routes == nil {
			t.Routes = map[string]*collectRun{}
		}
		run := t.Routes[rt.ID]
		for i := 0; i < 32; i++ {
			if run == nil {
				a, b, ok := rt.Schedule.Next(now)
				if !ok {
					break
				}
				run = &collectRun{Start: a, End: b}
				t.Routes[rt.ID] = run
			}
			if now.Before(run.End) {
				break
			}
			if !run.Start.Before(e.since()) {
				t.judgeCollection(e, rt, run)
			}
			a, b, ok := rt.Schedule.Next(run.End)
			if !ok {
				delete(t.Routes, rt.ID)
				break
			}
			run = &collectRun{Start: a, End: b}
			t.Routes[rt.ID] = run
		}
	}
}

func (t *truckState) judgeCollection(e *env, rt *fleet.CollectionRoute, run *collectRun) {
	if e.dc.MissedRoute.Disabled {
		return
	}
	var missing []string
	var pts orb.MultiPoint
	for _, b := range rt.Bins {
		if _, ok := run.Picked[b]; ok {
			continue
		}
		missing = append(missing, b)
		if d := e.lookup(b); d != nil && d.Lat != nil && d.Lon != nil {
			pts = append(pts, orb.Point{*d.Lon, *d.Lat})
		}
	}
	if len(missing) == 0 {
		return
	}
	ev := []Evidence{{Time: run.Start, Note: "window start"}, {Time: run.End, Note: "window end"}}
	for _, b := range missing {
		ev = append(ev, Evidence{Time: run.End, Device: b, Note: "scheduled bin without a pickup"})
	}
	v := Violation{Key: makeKey(MissedRoute, rt.ID, run.Start), Type: MissedRoute, Severity: Major, Start: run.Start,
		End: run.End, Route: rt.ID, Place: rt.ID, Evidence: ev,
		Summary: fmt.Sprintf("%s left %d of %d bins of %s without a pickup", e.state.ID, len(missing), len(rt.Bins), rt.ID)}
	if len(pts) > 0 {
		fc := geojson.NewFeatureCollection()
		fc.Append(geojson.NewFeature(pts))
		v.Geometry, _ = json.Marshal(fc)
		v.Lat, v.Lon, v.HasPos = pts[0][1], pts[0][0], true
	}
	e.emit(v)
}
