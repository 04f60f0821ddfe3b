package violations

import (
	"fmt"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// offlineState detects device_offline: nothing from a device for Factor x
// its expected interval (by event time, so a gap in a batched upload counts
// the same as live silence), or its last will. It is raised once per gap and
// raised again, resolved, when the device is heard from again.
type offlineState struct {
	Open  bool      `json:",omitempty"`
	Start time.Time `json:",omitempty"`
	Key   string    `json:",omitempty"`
	// After: only a reading after it shows the device back (for a last
	// will, readings still waiting in the reorder buffer do not).
	After time.Time `json:",omitempty"`
	// Never: the gap is the device never having reported since it was
	// first watched.
	Never bool `json:",omitempty"`
}

func (e *env) interval() time.Duration {
	if e.dev != nil && e.dev.Interval > 0 {
		return e.dev.Interval.D()
	}
	return fleet.DefaultIntervals[e.state.Kind]
}

func (o *offlineState) threshold(e *env) time.Duration {
	return time.Duration(float64(e.interval()) * e.dc.DeviceOffline.Factor)
}

// tick opens the gap once nothing has come for the threshold. A registered
// device never heard from is judged from when the clock first ticked it
// (deviceState.Watched): one installed and never brought online is offline
// too.
func (o *offlineState) tick(e *env, t time.Time) {
	last, never := e.state.LastSeen, false
	if last.IsZero() && e.dev != nil {
		last, never = e.state.Watched, true
	}
	if e.dc.DeviceOffline.Disabled || o.Open || last.IsZero() {
		return
	}
	thr := o.threshold(e)
	if thr <= 0 || t.Sub(last) <= thr { // a kind without an expected interval is not judged
		return
	}
	if never {
		o.open(e, last, last.Add(thr), true, fmt.Sprintf("nothing from %s since it was first watched at %s: it has never reported (expected every %s)",
			e.state.ID, last.UTC().Format(time.RFC3339), e.interval()))
		return
	}
	o.open(e, last, last.Add(thr), false, fmt.Sprintf("nothing from %s since %s (expected every %s)",
		e.state.ID, last.UTC().Format(time.RFC3339), e.interval()))
}

func (o *offlineState) open(e *env, start, end time.Time, never bool, summary string) {
	o.Open, o.Start, o.After, o.Never = true, start, start, never
	o.Key = makeKey(DeviceOffline, e.state.ID, start)
	v := Violation{Key: o.Key, Type: DeviceOffline, Severity: Minor, Start: start, End: end, Summary: summary,
		Evidence: []Evidence{{Time: start, Device: e.state.ID, Note: o.startNote()}}}
	e.placeLastSeen(&v)
	e.emit(v)
}

// placeLastSeen places a vehicle's offline violation, and so its dispatch,
// where it was last seen.
func (e *env) placeLastSeen(v *Violation) {
	if f := e.lastFix(); f.ok() {
		v.Lat, v.Lon, v.HasPos = f.Lat, f.Lon, true
		v.Evidence = append(v.Evidence, Evidence{Time: f.T, Device: e.state.ID,
			Fields: map[string]float64{"lat": f.Lat, "lon": f.Lon}, Note: "last known position"})
	}
}

// lastFix is the last accepted GPS fix of a truck or sweeper.
func (e *env) lastFix() fixPoint {
	switch {
	case e.state.Truck != nil:
		return e.state.Truck.Fix
	case e.state.Sweeper != nil:
		return e.state.Sweeper.Fix
	}
	return fixPoint{}
}

// will is the broker's last will: the device is gone now.
func (o *offlineState) will(e *env, at time.Time) {
	if e.dc.DeviceOffline.Disabled || o.Open {
		return
	}
	start := e.state.MaxTime // the newest reading received, released or not
	if start.IsZero() || start.After(at) {
		start = at
	}
	o.open(e, start, at, false, fmt.Sprintf("%s disconnected (last will) at %s", e.state.ID, at.UTC().Format(time.RFC3339)))
	o.After = at
}

// startNote is the evidence note of a gap's start.
func (o *offlineState) startNote() string {
	if o.Never {
		return "first watched; no reading yet"
	}
	return "last reading before the gap"
}

// seen resolves an open gap with the first reading after it.
func (o *offlineState) seen(e *env, r *telemetry.Reading) {
	if !o.Open || !r.Time.After(o.After) {
		return
	}
	o.Open = false
	summary := fmt.Sprintf("%s reporting again after %s", e.state.ID, r.Time.Sub(o.Start).Round(time.Second))
	if o.Never {
		summary = fmt.Sprintf("%s reporting for the first time, %s after it was first watched", e.state.ID, r.Time.Sub(o.Start).Round(time.Second))
	}
	v := Violation{Key: o.Key, Type: DeviceOffline, Severity: Minor, Start: o.Start, End: r.Time, Resolved: true,
		Summary: summary,
		Evidence: []Evidence{{Time: o.Start, Device: e.state.ID, Note: o.startNote()},
			evidence(r, "first reading after the gap")}}
	e.placeLastSeen(&v) // the same place as when it was raised: not yet moved by r
	e.emit(v)
}
