package violations

import (
	"time"

	"github.com/sanigate/sanigate/fleet"
)

// A sweeper's track is kept one point a trackStepM of road (or trackStepT
// of time, for a parked sweeper), whatever the reporting rate: a point is
// merged into the last one while the two before it are alike for the rules
// (brush, parked, over the route's or the coverage's speed), so every
// stretch the rules count keeps its attribution and only loses the detail
// of a straight few metres.
const (
	trackStepM = 5
	trackStepT = 20 * time.Second
)

// trackClass is what coverage and sweeping quality read of a point.
type trackClass struct{ brush, parked, overRoute, overCoverage bool }

func classOf(p fleet.TrackPoint, routeMax, coverageMax float64) trackClass {
	return trackClass{brush: p.BrushOn, parked: p.SpeedKmh < 0.5,
		overRoute: routeMax > 0 && p.SpeedKmh > routeMax, overCoverage: coverageMax > 0 && p.SpeedKmh > coverageMax}
}

// appendTrack appends p to track, or replaces the last point with it when
// the last two points are of one class and p lies within a step of the one
// before the last: the segment from it to p then counts as the two it
// replaces did.
func appendTrack(track []fleet.TrackPoint, p fleet.TrackPoint, routeMax, coverageMax float64) []fleet.TrackPoint {
	n := len(track)
	if n >= 2 {
		a, b := track[n-2], track[n-1]
		if !p.Time.Before(b.Time) && p.Time.Sub(a.Time) < trackStepT &&
			classOf(a, routeMax, coverageMax) == classOf(b, routeMax, coverageMax) &&
			fleet.DistanceM(a.Lat, a.Lon, p.Lat, p.Lon) < trackStepM {
			track[n-1] = p
			return track
		}
	}
	return append(track, p)
}
