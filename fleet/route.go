package fleet

import (
	"fmt"

	"github.com/paulmach/orb"
)

// SweepingRoute is a street-sweeping route: the line to sweep, when, how fast
// at most, by whom.
type SweepingRoute struct {
	ID, Name    string
	Line        orb.MultiLineString // [lon, lat]; a LineString is one part
	Schedule    Schedule
	MaxSpeedKmh float64
	Contractor  string
	Sweepers    []string // device ids
	// OneWay means each line is drawn in the direction of travel and must be
	// swept that way: a carriageway of a divided road.
	OneWay bool
	// LengthM is the route's length in metres.
	LengthM float64

	line int // of its feature in the file, for problems found later
}

// CollectionRoute is an ordered list of bins a truck empties in a window.
type CollectionRoute struct {
	ID, Name string
	Bins     []string // device ids, in collection order
	Schedule Schedule
	Truck    string              // device id
	Line     orb.MultiLineString // optional path, nil when not drawn

	line int
}

// Coverage measures how much of the route a sweeper's track covered, with the
// route's speed limit and direction rule and brush-on required. Zero fields of
// opts take their defaults.
func (r *SweepingRoute) Coverage(track []TrackPoint, opts CoverageOptions) Coverage {
	if opts.MaxSpeedKmh == 0 {
		opts.MaxSpeedKmh = r.MaxSpeedKmh
	}
	opts.RequireBrush = true
	opts.OneWay = opts.OneWay || r.OneWay
	return ComputeCoverage(r.Line, track, opts)
}

// CheckDevices cross-checks the routes against the registered devices: every
// sweeper, bin and truck must exist with the right kind, and a truck may only
// be scheduled to empty bins of its own category. sweepingFile and
// collectionFile name the routes' files in the problems.
func (p *Places) CheckDevices(devices []Device, sweepingFile, collectionFile string) Problems {
	byID := make(map[string]*Device, len(devices))
	for i := range devices {
		byID[devices[i].ID] = &devices[i]
	}
	var ps Problems
	check := func(file string, line int, field, id, kind string) *Device {
		d, ok := byID[id]
		switch {
		case !ok:
			ps.Add(file, line, field, "device %q is not registered", id)
			return nil
		case d.Kind != kind:
			ps.Add(file, line, field, "device %q is a %s, not a %s", id, d.Kind, kind)
			return nil
		}
		return d
	}
	for i, r := range p.SweepingRoutes {
		for j, s := range r.Sweepers {
			check(sweepingFile, r.line, fmt.Sprintf("features[%d] (id %q).properties.sweepers[%d]", i, r.ID, j), s, "sweeper")
		}
	}
	for i, r := range p.CollectionRoutes {
		f := fmt.Sprintf("features[%d] (id %q)", i, r.ID)
		truck := check(collectionFile, r.line, f+".properties.truck", r.Truck, "truck")
		for j, b := range r.Bins {
			bin := check(collectionFile, r.line, fmt.Sprintf("%s.properties.bins[%d]", f, j), b, "bin")
			if bin != nil && truck != nil && bin.Category != truck.Category {
				ps.Add(collectionFile, r.line, fmt.Sprintf("%s.properties.bins[%d]", f, j),
					"bin %q holds %s waste but truck %q collects %s", b, bin.Category, r.Truck, truck.Category)
			}
		}
	}
	return ps
}
