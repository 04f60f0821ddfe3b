package violations

import (
	"context"
	"strings"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// deviceState is everything the detectors remember of one device. It is
// owned by one shard goroutine and saved in snapshots (gob), which is why
// its fields (and those of the detectors' states) are exported.
type deviceState struct {
	ID   string
	Kind string
	// MaxTime is the newest event time received; Done the newest the
	// detectors handled or were ticked to by the clock: a reading before
	// Done is late and re-runs the device from a mark (replay.go).
	MaxTime, Done time.Time
	// LastSeen is the time of the newest handled reading.
	LastSeen time.Time
	// Since is when detection of this device began: a route window that
	// opened before it was not watched whole and is not judged.
	Since time.Time
	// Watched is when the clock first ticked the device before it ever
	// reported (the gateway's start, or its registration while running):
	// one that never reports is offline from then.
	Watched time.Time `json:",omitempty"`

	Offline offlineState
	Truck   *truckState   `json:",omitempty"`
	Sweeper *sweeperState `json:",omitempty"`
	Bin     *binState     `json:",omitempty"`
	Toilet  *toiletState  `json:",omitempty"`

	// Late holds readings older than the device's replay span, waiting for
	// a read-back (readback.go); snapshots carry them.
	Late []LateReading `json:",omitempty"`

	rbBusy    bool      // a read-back of Late is queued or running
	dirty     bool      // changed since the last snapshot
	savedDone time.Time // Done at the last snapshot
	rp        *replay   // marks, recent readings and emissions, for re-runs
}

// env is what detectors see while they work on one device: its registration,
// the thresholds, the map, and the way out for violations.
type env struct {
	ctx     context.Context
	sh      *shard
	loc     *time.Location
	dc      *Config
	cfg     *fleet.Config
	dev     *fleet.Device // nil for a device missing from the registry
	state   *deviceState
	devices map[string]*fleet.Device
	night   [2]time.Duration
	collect []*fleet.CollectionRoute // the truck's routes
	sweep   []*fleet.SweepingRoute   // the sweeper's routes
}

// lookup returns a registered device.
func (e *env) lookup(id string) *fleet.Device { return e.devices[id] }

// since is when detection of the device began.
func (e *env) since() time.Time { return e.state.Since }

func newDeviceState(id, kind string) *deviceState {
	d := &deviceState{ID: id, Kind: kind, rp: &replay{}}
	switch kind {
	case telemetry.KindTruck:
		d.Truck = &truckState{}
	case telemetry.KindSweeper:
		d.Sweeper = &sweeperState{}
	case telemetry.KindBin:
		d.Bin = &binState{}
	case telemetry.KindToilet:
		d.Toilet = &toiletState{}
	}
	return d
}

// tick runs the time-window rules up to t (event time).
func (d *deviceState) tick(e *env, t time.Time) {
	if !t.After(d.Done) {
		return
	}
	if d.Since.IsZero() {
		d.Since = t
		if b := e.sh.e.began; !b.IsZero() && b.Before(t) {
			d.Since = b
		}
	}
	d.Done = t
	d.Offline.tick(e, t)
	switch {
	case d.Truck != nil:
		d.Truck.tick(e, t)
	case d.Sweeper != nil:
		d.Sweeper.tick(e, t)
	case d.Bin != nil:
		d.Bin.tick(e, t)
	}
}

// handle runs the detectors on one released reading.
func (d *deviceState) handle(e *env, r *telemetry.Reading) {
	d.Offline.seen(e, r)
	if r.Time.After(d.LastSeen) {
		d.LastSeen = r.Time
	}
	switch {
	case d.Truck != nil:
		d.Truck.handle(e, r)
	case d.Sweeper != nil:
		d.Sweeper.handle(e, r)
	case d.Bin != nil:
		d.Bin.handle(e, r)
	case d.Toilet != nil:
		d.Toilet.handle(e, r)
	}
}

// lateEvent handles an event that came after later readings were
// processed. Only the rules that do not depend on order see it: pickups
// (routes, mixed collection), alarms and buttons.
func (d *deviceState) lateEvent(e *env, r *telemetry.Reading) {
	d.dirty = true
	switch {
	case d.Truck != nil && r.Event == "pickup":
		d.Truck.event(e, r)
	case d.Bin != nil && r.Event == "fire_alarm":
		d.Bin.fireAlarm(e, r)
	case d.Toilet != nil && r.Event == "help_button":
		d.Toilet.help(e, r)
	}
}

// position returns a reading's GPS position when it has one the GPS filters
// accepted; refused fixes carry a gps_filter field.
func position(r *telemetry.Reading) (lat, lon float64, ok bool) {
	if _, bad := r.Get("gps_filter"); bad {
		return 0, 0, false
	}
	lat, okLat := r.Num("lat")
	lon, okLon := r.Num("lon")
	if !okLat || !okLon || (lat == 0 && lon == 0) {
		return 0, 0, false
	}
	return lat, lon, true
}

// fixedPosition is the registered position of a fixed device.
func (e *env) fixedPosition() (lat, lon float64, ok bool) {
	if e.dev == nil || e.dev.Lat == nil || e.dev.Lon == nil {
		return 0, 0, false
	}
	return *e.dev.Lat, *e.dev.Lon, true
}

// locate places a position on the map.
func (e *env) locate(lat, lon float64) fleet.Location {
	if e.cfg == nil || e.cfg.Map == nil {
		return fleet.Location{}
	}
	return e.cfg.Map.Locate(lat, lon)
}

// emit completes v with what is known of the device and hands it on.
func (e *env) emit(v Violation) {
	v.Device = e.state.ID
	v.Kind = e.state.Kind
	if e.dev != nil {
		if v.Contractor == "" {
			v.Contractor = e.dev.Contractor
		}
		if v.Category == "" && (e.dev.Kind == telemetry.KindBin || e.dev.Kind == telemetry.KindTruck) {
			v.Category = e.dev.Category
		}
	}
	if !v.HasPos {
		if lat, lon, ok := e.fixedPosition(); ok {
			v.Lat, v.Lon, v.HasPos = lat, lon, true
		}
	}
	if v.District == "" && v.HasPos {
		v.District = e.locate(v.Lat, v.Lon).District
	}
	if v.District == "" && e.dev != nil {
		v.District = e.dev.District
	}
	if v.End.Before(v.Start) {
		v.End = v.Start
	}
	if v.Key == "" {
		v.Key = makeKey(v.Type, e.state.ID, v.Start)
	}
	e.sh.out(e.ctx, e.state, v)
}

// report hands a route window's coverage to the sink, when it takes them.
func (e *env) report(c CoverageReport) {
	if cs, ok := e.sh.e.sink.(CoverageSink); ok {
		if err := cs.Coverage(e.ctx, c); err != nil {
			e.sh.e.log.Warn("coverage report not stored", "route", c.Route, "device", c.Device, "error", err)
		}
	}
}

// makeKey is the stable key of an occurrence: its type, its subject (a
// device, a route, a truck and a bin) and its start, to the second. The same
// readings always give the same start, so a replay gives the same key.
func makeKey(typ, subject string, start time.Time) string {
	var b strings.Builder
	b.WriteString(typ)
	b.WriteByte('/')
	b.WriteString(subject)
	b.WriteByte('/')
	b.WriteString(start.UTC().Truncate(time.Second).Format("20060102T150405Z"))
	return b.String()
}

// evidence turns a reading into evidence, with its numbers and strings.
func evidence(r *telemetry.Reading, note string) Evidence {
	ev := Evidence{Time: r.Time, Device: r.Device, Event: r.Event, Note: note}
	for _, f := range r.Fields {
		if f.Type == telemetry.String {
			if ev.Text == nil {
				ev.Text = map[string]string{}
			}
			ev.Text[f.Name] = f.Str
			continue
		}
		if ev.Fields == nil {
			ev.Fields = make(map[string]float64, len(r.Fields))
		}
		ev.Fields[f.Name] = f.Num
	}
	return ev
}

// sample is a compact numeric record a detector keeps as evidence.
type sample struct {
	T time.Time
	V float64
}

// samplesEvidence turns a series into evidence, thinned to at most max
// entries (first and last kept).
func samplesEvidence(name string, s []sample, max int, note string) []Evidence {
	if len(s) == 0 {
		return nil
	}
	step := 1
	if len(s) > max && max > 1 {
		step = (len(s) + max - 2) / (max - 1)
	}
	var out []Evidence
	for i := 0; i < len(s); i += step {
		out = append(out, Evidence{Time: s[i].T, Fields: map[string]float64{name: s[i].V}, Note: note})
	}
	if last := s[len(s)-1]; !out[len(out)-1].Time.Equal(last.T) {
		out = append(out, Evidence{Time: last.T, Fields: map[string]float64{name: last.V}, Note: note})
	}
	return out
}

// appendCapped appends to a series, dropping the oldest past max.
func appendCapped(s []sample, v sample, max int) []sample {
	s = append(s, v)
	if len(s) > max {
		n := copy(s, s[len(s)-max:])
		s = s[:n]
	}
	return s
}
