package fleet

import (
	"fmt"
	"math"
	"sort"

	"github.com/paulmach/orb"
)

// Distances in this package are in metres on the WGS-84 ellipsoid, computed in
// a local flat approximation: a short step is scaled by the ellipsoid's
// meridional radius (north-south) and its radius in the prime vertical times
// cos(latitude) (east-west), both taken at the step's mid-latitude. Summed over
// the pieces of a line this agrees with the ellipsoidal geodesic to about 0.01 %
// at city scale (see TestLengthAccuracy). orb's geo package works on a sphere of
// the equatorial radius, which is 0.1-0.3 % off at Beijing's latitude, so it is
// used for geometry, not for metres.

const (
	wgs84A  = 6378137.0
	wgs84F  = 1 / 298.257223563
	wgs84E2 = wgs84F * (2 - wgs84F)
	degRad  = math.Pi / 180
)

// metresPerDegree returns how many metres one degree of longitude and one
// degree of latitude measure at latitude lat (degrees) on WGS-84.
func metresPerDegree(lat float64) (kx, ky float64) {
	s := math.Sin(lat * degRad)
	w := 1 - wgs84E2*s*s
	n := wgs84A / math.Sqrt(w)                       // prime vertical radius
	m := wgs84A * (1 - wgs84E2) / (w * math.Sqrt(w)) // meridional radius
	return n * math.Cos(lat*degRad) * degRad, m * degRad
}

// DistanceM is the distance in metres between two WGS-84 positions given as
// latitude and longitude in degrees. It is meant for distances up to tens of
// kilometres (error about 0.01 % at 10 km); for longer ones it degrades slowly.
func DistanceM(lat1, lon1, lat2, lon2 float64) float64 {
	kx, ky := metresPerDegree((lat1 + lat2) / 2)
	dlon := lon2 - lon1
	if dlon > 180 {
		dlon -= 360
	} else if dlon < -180 {
		dlon += 360
	}
	dx := dlon * kx
	dy := (lat2 - lat1) * ky
	return math.Hypot(dx, dy)
}

// pointDistM is DistanceM for orb points ([lon, lat]).
func pointDistM(a, b orb.Point) float64 { return DistanceM(a[1], a[0], b[1], b[0]) }

// LengthM is the length in metres of a LineString or MultiLineString
// ([lon, lat] points); other geometries measure 0.
func LengthM(g orb.Geometry) float64 {
	switch g := g.(type) {
	case orb.LineString:
		var sum float64
		for i := 1; i < len(g); i++ {
			sum += pointDistM(g[i-1], g[i])
		}
		return sum
	case orb.MultiLineString:
		var sum float64
		for _, ls := range g {
			sum += LengthM(ls)
		}
		return sum
	}
	return 0
}

// projection is an equirectangular projection around a fixed point: x east and
// y north in metres. Within 10 km of its centre its scale error is under 0.15 %
// (the change of cos(latitude) over 0.09 degrees at 40 N), far below GPS noise.
type projection struct {
	lon0, lat0, kx, ky float64
}

func newProjection(center orb.Point) projection {
	kx, ky := metresPerDegree(center[1])
	return projection{lon0: center[0], lat0: center[1], kx: kx, ky: ky}
}

func (p projection) xy(lon, lat float64) vec {
	return vec{(lon - p.lon0) * p.kx, (lat - p.lat0) * p.ky}
}

// vec is a point or a direction in a local metric plane.
type vec struct{ x, y float64 }

func (a vec) sub(b vec) vec       { return vec{a.x - b.x, a.y - b.y} }
func (a vec) add(b vec) vec       { return vec{a.x + b.x, a.y + b.y} }
func (a vec) scale(k float64) vec { return vec{a.x * k, a.y * k} }
func (a vec) dot(b vec) float64   { return a.x*b.x + a.y*b.y }
func (a vec) cross(b vec) float64 { return a.x*b.y - a.y*b.x }
func (a vec) norm() float64       { return math.Hypot(a.x, a.y) }
func (a vec) unit() vec {
	n := a.norm()
	if n == 0 {
		return vec{}
	}
	return vec{a.x / n, a.y / n}
}

// segDist is the distance from p to the segment a-b.
func segDist(p, a, b vec) float64 {
	ab := b.sub(a)
	l2 := ab.dot(ab)
	if l2 == 0 {
		return p.sub(a).norm()
	}
	t := p.sub(a).dot(ab) / l2
	if t < 0 {
		t = 0
	} else if t > 1 {
		t = 1
	}
	return p.sub(a.add(ab.scale(t))).norm()
}

// validPosition reports why a [lon, lat] position is not a WGS-84 position, or
// "" when it is one. swapped is true when exchanging the two numbers would make
// it valid: GeoJSON is [longitude, latitude], and [lat, lon] is the common slip.
func validPosition(p orb.Point) (problem string, swapped bool) {
	lon, lat := p[0], p[1]
	if math.IsNaN(lon) || math.IsNaN(lat) || math.IsInf(lon, 0) || math.IsInf(lat, 0) {
		return "coordinate is not a number", false
	}
	if lat < -90 || lat > 90 {
		if lon >= -90 && lon <= 90 && lat >= -180 && lat <= 180 {
			return fmt.Sprintf("latitude %g is out of range: lat/lon swapped? GeoJSON positions are [longitude, latitude]", lat), true
		}
		return fmt.Sprintf("latitude %g is out of range [-90, 90]", lat), false
	}
	if lon < -180 || lon > 180 {
		return fmt.Sprintf("longitude %g is out of range [-180, 180]", lon), false
	}
	return "", false
}

// ringProblems lists what is wrong with a polygon ring: too few positions,
// not closed, or crossing itself. Positions must already be in range.
func ringProblems(r orb.Ring) []string {
	if len(r) < 4 {
		return []string{fmt.Sprintf("a ring needs at least 4 positions (the first repeated last), got %d", len(r))}
	}
	var out []string
	if r[0] != r[len(r)-1] {
		out = append(out, fmt.Sprintf("ring is not closed: first position %v differs from last %v", [2]float64(r[0]), [2]float64(r[len(r)-1])))
		r = append(append(orb.Ring(nil), r...), r[0])
	}
	if i, j, ok := selfIntersection(r); ok {
		out = append(out, fmt.Sprintf("ring crosses itself: edge %d (%v-%v) meets edge %d (%v-%v)",
			i, [2]float64(r[i]), [2]float64(r[i+1]), j, [2]float64(r[j]), [2]float64(r[j+1])))
	}
	return out
}

// selfIntersection finds two non-adjacent edges of a closed ring that touch
// or cross, by a sweep over the edges sorted by their west end: only edges
// whose longitude ranges overlap are compared, so a ring of n edges costs
// about n log n rather than n².
func selfIntersection(r orb.Ring) (int, int, bool) {
	n := len(r) - 1 // edges
	if n < 3 {
		return 0, 0, false
	}
	type edge struct {
		i          int
		minX, maxX float64
	}
	edges := make([]edge, n)
	for i := 0; i < n; i++ {
		edges[i] = edge{i, math.Min(r[i][0], r[i+1][0]), math.Max(r[i][0], r[i+1][0])}
	}
	sort.Slice(edges, func(a, b int) bool { return edges[a].minX < edges[b].minX })
	for a := 0; a < n; a++ {
		ea := edges[a]
		for b := a + 1; b < n && edges[b].minX <= ea.maxX; b++ {
			i, j := ea.i, edges[b].i
			if i > j {
				i, j = j, i
			}
			if j == i+1 || (i == 0 && j == n-1) {
				continue // neighbours share a vertex
			}
			if segmentsTouch(r[i], r[i+1], r[j], r[j+1]) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// segmentsTouch reports whether the closed segments p1-p2 and q1-q2 share a point.
func segmentsTouch(p1, p2, q1, q2 orb.Point) bool {
	d1 := orient(q1, q2, p1)
	d2 := orient(q1, q2, p2)
	d3 := orient(p1, p2, q1)
	d4 := orient(p1, p2, q2)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return true
	}
	return (d1 == 0 && onSegment(q1, q2, p1)) || (d2 == 0 && onSegment(q1, q2, p2)) ||
		(d3 == 0 && onSegment(p1, p2, q1)) || (d4 == 0 && onSegment(p1, p2, q2))
}

func orient(a, b, c orb.Point) float64 {
	return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
}

func onSegment(a, b, p orb.Point) bool {
	return math.Min(a[0], b[0]) <= p[0] && p[0] <= math.Max(a[0], b[0]) &&
		math.Min(a[1], b[1]) <= p[1] && p[1] <= math.Max(a[1], b[1])
}
