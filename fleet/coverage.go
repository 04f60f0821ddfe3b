package fleet

import (
	"math"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/tidwall/rtree"
)

// TrackPoint is one sample of a vehicle's track, as coverage needs it.
type TrackPoint struct {
	Time     time.Time
	Lat, Lon float64
	SpeedKmh float64 // as reported by the device
	BrushOn  bool
}

// CoverageOptions tunes ComputeCoverage; zero fields take the defaults. The
// fields with yaml tags are city-wide settings; the others come from the route.
type CoverageOptions struct {
	// ToleranceM is how far from the route a track may run and still cover
	// it. Default 15 m (docs/domain.md, missed_route).
	ToleranceM float64 `yaml:"tolerance_m"`
	// MaxSpeedKmh, when positive, is the sweeping speed: track driven faster
	// does not count as covered.
	MaxSpeedKmh float64 `yaml:"-"`
	// RequireBrush counts only track driven with the brush on.
	RequireBrush bool `yaml:"-"`
	// MaxGap and MaxGapM: two consecutive samples further apart than either
	// are not joined, so a route piece between them is not covered by a
	// guess. Defaults 60 s and 200 m.
	MaxGap  Duration `yaml:"max_gap"`
	MaxGapM float64  `yaml:"max_gap_m"`
	// PieceM is the length of the pieces the route is cut into. Default 5 m.
	PieceM float64 `yaml:"piece_m"`
	// MaxAngleDeg is the largest angle between the track's direction and the
	// route's for the track to cover it. Default 60 degrees.
	MaxAngleDeg float64 `yaml:"max_angle_deg"`
	// HeadingBaseM is how far back and ahead along the track its direction is
	// measured, so that GPS jitter at walking speed does not scramble it.
	// Default 20 m.
	HeadingBaseM float64 `yaml:"heading_base_m"`
	// OneWay means the route's lines are drawn in the direction of travel
	// and count only when driven that way.
	OneWay bool `yaml:"-"`
}

func (o *CoverageOptions) defaults() {
	if o.ToleranceM <= 0 {
		o.ToleranceM = 15
	}
	if o.MaxGap <= 0 {
		o.MaxGap = Duration(60 * time.Second)
	}
	if o.MaxGapM <= 0 {
		o.MaxGapM = 200
	}
	if o.PieceM <= 0 {
		o.PieceM = 5
	}
	if o.MaxAngleDeg <= 0 {
		o.MaxAngleDeg = 60
	}
	if o.HeadingBaseM <= 0 {
		o.HeadingBaseM = 20
	}
}

// Coverage is how much of a route a track covered.
type Coverage struct {
	LengthM  float64 // of the route
	CoveredM float64 // covered by eligible track (brush on, slow enough)
	// PassedM is the length the track ran along in any state; PassedM -
	// CoveredM is the length driven with the brush off or too fast.
	PassedM  float64
	Fraction float64 // CoveredM / LengthM; 1 for an empty route
	// Uncovered is every stretch of the route not covered, [lon, lat], in
	// route order.
	Uncovered orb.MultiLineString
}

// UncoveredGeoJSON returns the uncovered stretches as a FeatureCollection of
// LineStrings, each with its length_m, for a violation's evidence.
func (c Coverage) UncoveredGeoJSON() *geojson.FeatureCollection {
	fc := geojson.NewFeatureCollection()
	for _, ls := range c.Uncovered {
		f := geojson.NewFeature(ls)
		f.Properties["length_m"] = math.Round(LengthM(ls)*10) / 10
		fc.Append(f)
	}
	return fc
}

// piece is a short stretch of the route, cut so that it never spans a vertex.
type piece struct {
	a, b     orb.Point // [lon, lat]
	mid      vec       // projected
	dir      vec       // unit, projected, direction of drawing
	lengthM  float64
	line     int32
	directed bool
}

// ComputeCoverage measures which parts of route the track covered. The route
// is cut into pieces of PieceM; a piece is covered when an eligible track
// segment passes within ToleranceM of its midpoint, with the midpoint's foot
// on the segment (not beyond its ends), and the track runs along the piece:
// the angle between the track's direction and the piece's is at most
// MaxAngleDeg, ignoring the sense of travel for ordinary pieces.
//
// The sense counts for directed pieces: all of a OneWay route, and any piece
// with another piece of the same route running the opposite way within twice
// the tolerance. That second rule makes a route that doubles back along one
// street need both passes, and keeps a track on one carriageway of a divided
// road (drawn, as it is driven, in opposite senses 20-30 m apart) from
// covering the other. The angle rule keeps a track that crosses the route
// from covering the crossing street. A tolerance smaller than the carriageway
// separation alone would not do: a sweeper at the median edge runs 10-15 m
// from the other carriageway's centre line.
//
// Positions are projected onto a plane around the route's centre
// (equirectangular, WGS-84 radii): under 0.15 % scale error within 10 km,
// centimetres at the tolerance. Lengths are measured as by LengthM. Samples
// are sample-and-hold: a segment is eligible when its first sample had the
// brush on (when required) and a speed at or under MaxSpeedKmh. The track
// must be in time order.
func ComputeCoverage(route orb.MultiLineString, track []TrackPoint, opts CoverageOptions) Coverage {
	opts.defaults()
	proj := newProjection(route.Bound().Center())
	pieces := cutRoute(route, proj, opts.PieceM)

	var tree rtree.RTreeGN[float64, int32]
	for i := range pieces {
		m := pieces[i].mid
		tree.Insert([2]float64{m.x, m.y}, [2]float64{m.x, m.y}, int32(i))
	}
	markDirected(pieces, &tree, opts)

	covered := make([]bool, len(pieces))
	passed := make([]bool, len(pieces))
	cosMax := math.Cos(opts.MaxAngleDeg * degRad)

	pts, joined, eligible := projectTrack(track, proj, opts)
	heading := trackHeadings(pts, joined, opts.HeadingBaseM)

	for i := 0; i+1 < len(track); i++ {
		if !joined[i] {
			continue
		}
		h := heading[i].unit().add(heading[i+1].unit()).unit()
		if h == (vec{}) {
			continue
		}
		matchSegment(&tree, pieces, pts[i], pts[i+1], h, cosMax, opts.ToleranceM, func(k int32) {
			passed[k] = true
			if eligible[i] {
				covered[k] = true
			}
		})
	}
	return summarizeCoverage(pieces, passed, covered)
}

// projectTrack projects the track's samples onto the plane and says, for
// each sample i, whether the segment from i to i+1 is real track rather than
// a gap (joined) and whether that segment may cover (eligible).
func projectTrack(track []TrackPoint, proj projection, opts CoverageOptions) (pts []vec, joined, eligible []bool) {
	pts = make([]vec, len(track))
	for i, p := range track {
		pts[i] = proj.xy(p.Lon, p.Lat)
	}
	joined = make([]bool, len(track))
	eligible = make([]bool, len(track))
	for i := range track {
		p := track[i]
		eligible[i] = (!opts.RequireBrush || p.BrushOn) && (opts.MaxSpeedKmh <= 0 || p.SpeedKmh <= opts.MaxSpeedKmh)
		if i+1 < len(track) {
			dt := track[i+1].Time.Sub(p.Time)
			joined[i] = dt >= 0 && dt <= opts.MaxGap.D() && pts[i+1].sub(pts[i]).norm() <= opts.MaxGapM
		}
	}
	return pts, joined, eligible
}

// matchSegment calls hit with every piece the track segment from a to b,
// running in direction h, passes along: within tol of the piece's midpoint,
// with the midpoint's foot on the segment, at an angle whose cosine is at
// least cosMax (in the piece's sense when it is directed).
func matchSegment(tree *rtree.RTreeGN[float64, int32], pieces []piece, a, b, h vec, cosMax, tol float64, hit func(k int32)) {
	min := [2]float64{math.Min(a.x, b.x) - tol, math.Min(a.y, b.y) - tol}
	max := [2]float64{math.Max(a.x, b.x) + tol, math.Max(a.y, b.y) + tol}
	ab := b.sub(a)
	l2 := ab.dot(ab)
	tree.Search(min, max, func(_, _ [2]float64, k int32) bool {
		pc := &pieces[k]
		c := pc.dir.dot(h)
		if pc.directed {
			if c < cosMax {
				return true
			}
		} else if math.Abs(c) < cosMax {
			return true
		}
		// The foot of the piece's midpoint must fall on the segment,
		// not beyond its ends: otherwise the last sample before a gap,
		// a stop or the brush going up would cover a tolerance's worth
		// of street it never reached.
		if l2 == 0 {
			return true
		}
		rel := pc.mid.sub(a)
		t := rel.dot(ab) / l2
		if t < 0 || t > 1 || math.Abs(rel.cross(ab))/math.Sqrt(l2) > tol {
			return true
		}
		hit(k)
		return true
	})
}

// summarizeCoverage adds up the pieces' lengths and joins consecutive
// uncovered pieces of one line into the Uncovered line strings.
func summarizeCoverage(pieces []piece, passed, covered []bool) Coverage {
	var cov Coverage
	var cur orb.LineString
	last := -1
	for k := range pieces {
		pc := &pieces[k]
		cov.LengthM += pc.lengthM
		if passed[k] {
			cov.PassedM += pc.lengthM
		}
		if covered[k] {
			cov.CoveredM += pc.lengthM
			continue
		}
		if last >= 0 && last == k-1 && pieces[last].line == pc.line {
			cur = append(cur, pc.b)
		} else {
			if len(cur) > 0 {
				cov.Uncovered = append(cov.Uncovered, cur)
			}
			cur = orb.LineString{pc.a, pc.b}
		}
		last = k
	}
	if len(cur) > 0 {
		cov.Uncovered = append(cov.Uncovered, cur)
	}
	cov.Fraction = 1
	if cov.LengthM > 0 {
		cov.Fraction = cov.CoveredM / cov.LengthM
	}
	return cov
}

// cutRoute cuts each segment of the route into equal pieces of at most
// pieceM, so that every piece lies on one segment and has one direction.
func cutRoute(route orb.MultiLineString, proj projection, pieceM float64) []piece {
	var out []piece
	for li, ls := range route {
		for i := 1; i < len(ls); i++ {
			a, b := ls[i-1], ls[i]
			segM := pointDistM(a, b)
			if segM == 0 {
				continue
			}
			pa, pb := proj.xy(a[0], a[1]), proj.xy(b[0], b[1])
			dir := pb.sub(pa).unit()
			n := int(math.Ceil(segM / pieceM))
			lerp := func(f float64) orb.Point {
				return orb.Point{a[0] + (b[0]-a[0])*f, a[1] + (b[1]-a[1])*f}
			}
			for k := 0; k < n; k++ {
				f0, f1 := float64(k)/float64(n), float64(k+1)/float64(n)
				mid := pa.add(pb.sub(pa).scale((f0 + f1) / 2))
				out = append(out, piece{a: lerp(f0), b: lerp(f1), mid: mid, dir: dir, lengthM: segM / float64(n), line: int32(li)})
			}
		}
	}
	return out
}

// markDirected flags the pieces whose sense of travel matters (see
// ComputeCoverage).
func markDirected(pieces []piece, tree *rtree.RTreeGN[float64, int32], opts CoverageOptions) {
	if opts.OneWay {
		for i := range pieces {
			pieces[i].directed = true
		}
		return
	}
	r := 2 * opts.ToleranceM
	opposite := -math.Cos(opts.MaxAngleDeg * degRad)
	for i := range pieces {
		pi := &pieces[i]
		m := pi.mid
		tree.Search([2]float64{m.x - r, m.y - r}, [2]float64{m.x + r, m.y + r}, func(_, _ [2]float64, j int32) bool {
			pj := &pieces[j]
			if pi.dir.dot(pj.dir) <= opposite && pj.mid.sub(m).norm() <= r {
				pi.directed = true
				pj.directed = true
				return false
			}
			return true
		})
	}
}

// trackHeadings estimates the direction of travel at each sample as the
// vector from a sample at least base metres back to one at least base metres
// ahead, within the same run of joined samples: at sweeping speed the step
// between two 1 Hz samples is shorter than the GPS jitter, so their own
// direction is noise. A zero vector means unknown (the vehicle stood still).
const maxHeadingScan = 120

func trackHeadings(pts []vec, joined []bool, base float64) []vec {
	out := make([]vec, len(pts))
	for i := range pts {
		// The scan is bounded so that a vehicle parked for hours costs
		// linear time; two minutes of 1 Hz samples is plenty of baseline.
		back := i
		for back > 0 && i-back < maxHeadingScan && joined[back-1] && pts[i].sub(pts[back]).norm() < base {
			back--
		}
		fwd := i
		for fwd+1 < len(pts) && fwd-i < maxHeadingScan && joined[fwd] && pts[fwd].sub(pts[i]).norm() < base {
			fwd++
		}
		out[i] = pts[fwd].sub(pts[back])
	}
	return out
}
