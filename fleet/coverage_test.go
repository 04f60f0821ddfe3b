package fleet

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// Test routes and tracks are drawn in metres east (x) and north (y) of a
// point in the demo city, then turned into WGS-84.
var origin = orb.Point{116.40, 39.90}

func ll(x, y float64) orb.Point {
	kx, ky := metresPerDegree(origin[1])
	return orb.Point{origin[0] + x/kx, origin[1] + y/ky}
}

func path(xy ...float64) orb.LineString {
	var ls orb.LineString
	for i := 0; i+1 < len(xy); i += 2 {
		ls = append(ls, ll(xy[i], xy[i+1]))
	}
	return ls
}

// leg is a stretch of driving: along waypoints (metres) at a speed, with
// the brush on or off. A leg with skip set is driven without reporting (a
// gap in the track).
type leg struct {
	xy       []float64
	speedKmh float64
	brush    bool
	skip     bool
}

// drive samples legs at 1 Hz, adding uniform noise of up to jitter metres on
// each axis.
func drive(legs []leg, jitter float64, seed uint64) []TrackPoint {
	rng := rand.New(rand.NewPCG(seed, 7))
	t := time.Date(2026, 9, 14, 5, 0, 0, 0, time.UTC)
	var out []TrackPoint
	carry := 0.0 // metres already driven towards the next sample
	for _, lg := range legs {
		step := lg.speedKmh / 3.6
		for i := 0; i+3 < len(lg.xy); i += 2 {
			ax, ay, bx, by := lg.xy[i], lg.xy[i+1], lg.xy[i+2], lg.xy[i+3]
			segLen := math.Hypot(bx-ax, by-ay)
			for d := carry; d < segLen; d += step {
				f := d / segLen
				if !lg.skip {
					x := ax + (bx-ax)*f + (rng.Float64()*2-1)*jitter
					y := ay + (by-ay)*f + (rng.Float64()*2-1)*jitter
					p := ll(x, y)
					out = append(out, TrackPoint{Time: t, Lat: p[1], Lon: p[0], SpeedKmh: lg.speedKmh, BrushOn: lg.brush})
				}
				t = t.Add(time.Second)
				carry = d + step - segLen
			}
		}
	}
	return out
}

func on(speed float64, xy ...float64) leg  { return leg{xy: xy, speedKmh: speed, brush: true} }
func off(speed float64, xy ...float64) leg { return leg{xy: xy, speedKmh: speed} }
func gap(speed float64, xy ...float64) leg { return leg{xy: xy, speedKmh: speed, skip: true} }

func TestCoverage(t *testing.T) {
	straight := orb.MultiLineString{path(0, 0, 1000, 0)}
	sweep := CoverageOptions{MaxSpeedKmh: 8, RequireBrush: true}
	tests := []struct {
		name      string
		route     orb.MultiLineString
		legs      []leg
		jitter    float64
		opts      CoverageOptions
		want, tol float64      // fraction
		uncovered [][2]float64 // x ranges along y=0 expected uncovered, when checked
	}{
		{name: "straight, fully covered", route: straight, legs: []leg{on(7, 0, 0, 1000, 0)}, opts: sweep,
			want: 1, tol: 0.005},
		{name: "driven the other way", route: straight, legs: []leg{on(7, 1000, 0, 0, 0)}, opts: sweep,
			want: 1, tol: 0.005},
		{name: "half covered", route: straight, legs: []leg{on(7, 0, 0, 500, 0)}, opts: sweep,
			want: 0.5, tol: 0.006, uncovered: [][2]float64{{500, 1000}}},
		{name: "one block skipped by a detour", route: straight,
			legs: []leg{on(7, 0, 0, 400, 0, 400, 100, 600, 100, 600, 0, 1000, 0)}, opts: sweep,
			want: 0.8, tol: 0.006, uncovered: [][2]float64{{400, 600}}},
		{name: "brush off for a block", route: straight,
			legs: []leg{on(7, 0, 0, 300, 0), off(7, 300, 0, 500, 0), on(7, 500, 0, 1000, 0)}, opts: sweep,
			want: 0.8, tol: 0.01, uncovered: [][2]float64{{300, 500}}},
		{name: "too fast for a block", route: straight,
			legs: []leg{on(7, 0, 0, 600, 0), on(20, 600, 0, 800, 0), on(7, 800, 0, 1000, 0)}, opts: sweep,
			want: 0.8, tol: 0.01, uncovered: [][2]float64{{600, 800}}},
		{name: "speed and brush ignored when not asked", route: straight,
			legs: []leg{off(30, 0, 0, 1000, 0)}, want: 1, tol: 0.01}, // the last 8 m fall after the last 1 Hz sample
		{name: "doubling back, out only", route: orb.MultiLineString{path(0, 0, 1000, 0, 0, 0)},
			legs: []leg{on(7, 0, 0, 1000, 0)}, opts: sweep, want: 0.5, tol: 0.01},
		{name: "doubling back, out and back", route: orb.MultiLineString{path(0, 0, 1000, 0, 0, 0)},
			legs: []leg{on(7, 0, 0, 1000, 0, 0, 0)}, opts: sweep, want: 1, tol: 0.01},
		{name: "self-crossing, first leg only",
			route: orb.MultiLineString{path(0, 0, 1000, 0, 1000, 500, 500, 500, 500, -500)},
			legs:  []leg{on(7, 0, 0, 1000, 0)}, opts: sweep, want: 1000.0 / 3000, tol: 0.004},
		{name: "self-crossing, all of it",
			route: orb.MultiLineString{path(0, 0, 1000, 0, 1000, 500, 500, 500, 500, -500)},
			legs:  []leg{on(7, 0, 0, 1000, 0, 1000, 500, 500, 500, 500, -500)}, opts: sweep, want: 1, tol: 0.005},
		{name: "divided road, track near the median covers one side only",
			route: orb.MultiLineString{path(0, 0, 1000, 0), path(1000, 22, 0, 22)},
			legs:  []leg{on(7, 0, 8, 1000, 8)}, opts: sweep, want: 0.5, tol: 0.005},
		{name: "divided road, both sides",
			route: orb.MultiLineString{path(0, 0, 1000, 0), path(1000, 22, 0, 22)},
			legs:  []leg{on(7, 0, -3, 1000, -3), on(7, 1000, 25, 0, 25)}, opts: sweep, want: 1, tol: 0.01},
		{name: "one way, driven against the drawing", route: straight,
			legs: []leg{on(7, 1000, 0, 0, 0)}, opts: CoverageOptions{OneWay: true}, want: 0, tol: 0},
		{name: "five-minute gap is not bridged", route: straight,
			legs: []leg{on(7, 0, 0, 300, 0), gap(7, 300, 0, 900, 0), on(7, 900, 0, 1000, 0)}, opts: sweep,
			want: 0.4, tol: 0.01, uncovered: [][2]float64{{300, 900}}},
		{name: "30-second gap is bridged", route: straight,
			legs: []leg{on(7, 0, 0, 400, 0), gap(7, 400, 0, 458, 0), on(7, 458, 0, 1000, 0)}, opts: sweep,
			want: 1, tol: 0.005},
		{name: "jitter 5 m on a route with corners",
			route: orb.MultiLineString{path(0, 0, 500, 0, 500, 500, 0, 500)},
			legs:  []leg{on(7, 0, 0, 500, 0, 500, 500, 0, 500)}, jitter: 5, opts: sweep, want: 0.975, tol: 0.025},
		{name: "jitter 10 m and a 30-second gap",
			route:  orb.MultiLineString{path(0, 0, 500, 0, 500, 500, 0, 500)},
			legs:   []leg{on(7, 0, 0, 500, 0, 500, 300), gap(7, 500, 300, 500, 358), on(7, 500, 358, 500, 500, 0, 500)},
			jitter: 10, opts: sweep, want: 0.975, tol: 0.025},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 5; seed++ {
				track := drive(tt.legs, tt.jitter, seed)
				cov := ComputeCoverage(tt.route, track, tt.opts)
				if math.Abs(cov.Fraction-tt.want) > tt.tol+1e-9 {
					t.Errorf("seed %d: got fraction %.4f, want %.4f ± %.3f (uncovered %v)", seed, cov.Fraction, tt.want, tt.tol, describeUncovered(cov))
				}
				if want := LengthM(tt.route); math.Abs(cov.LengthM-want) > 1e-6*want {
					t.Errorf("got route length %.3f, want %.3f", cov.LengthM, want)
				}
				if tt.uncovered != nil {
					got := xRanges(cov.Uncovered)
					ok := len(got) == len(tt.uncovered)
					for i := 0; ok && i < len(got); i++ {
						ok = math.Abs(got[i][0]-tt.uncovered[i][0]) <= 10 && math.Abs(got[i][1]-tt.uncovered[i][1]) <= 10
					}
					if !ok {
						t.Errorf("seed %d: got uncovered x ranges %v, want %v (± 10 m)", seed, got, tt.uncovered)
					}
				}
				if tt.jitter == 0 {
					break // the track is the same for every seed
				}
			}
		})
	}
}

func xRanges(ml orb.MultiLineString) [][2]float64 {
	kx, _ := metresPerDegree(origin[1])
	var out [][2]float64
	for _, ls := range ml {
		a, b := (ls[0][0]-origin[0])*kx, (ls[len(ls)-1][0]-origin[0])*kx
		out = append(out, [2]float64{math.Round(math.Min(a, b)), math.Round(math.Max(a, b))})
	}
	return out
}

func describeUncovered(c Coverage) string {
	var parts []string
	for _, ls := range c.Uncovered {
		a, b := ls[0], ls[len(ls)-1]
		kx, ky := metresPerDegree(origin[1])
		parts = append(parts, strings.TrimSpace(
			strings.Join([]string{
				"(" + ftoa((a[0]-origin[0])*kx) + "," + ftoa((a[1]-origin[1])*ky) + ")",
				"(" + ftoa((b[0]-origin[0])*kx) + "," + ftoa((b[1]-origin[1])*ky) + ")",
			}, "-")))
	}
	return strings.Join(parts, " ")
}

func ftoa(f float64) string {
	return strings.TrimRight(strings.TrimRight(jsonNum(math.Round(f)), "0"), ".")
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestCoveragePassedAndGeoJSON(t *testing.T) {
	route := SweepingRoute{ID: "r", Line: orb.MultiLineString{path(0, 0, 1000, 0)}, MaxSpeedKmh: 8}
	track := drive([]leg{on(7, 0, 0, 500, 0), off(7, 500, 0, 700, 0)}, 0, 1)
	cov := route.Coverage(track, CoverageOptions{})
	if math.Abs(cov.CoveredM-500) > 6 || math.Abs(cov.PassedM-700) > 6 {
		t.Errorf("got covered %.1f m, passed %.1f m, want 500 and 700", cov.CoveredM, cov.PassedM)
	}
	b, err := json.Marshal(cov.UncoveredGeoJSON())
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Type     string
		Features []struct {
			Geometry   struct{ Type string }
			Properties struct {
				LengthM float64 `json:"length_m"`
			}
		}
	}
	if err := json.Unmarshal(b, &fc); err != nil {
		t.Fatal(err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 1 || fc.Features[0].Geometry.Type != "LineString" ||
		math.Abs(fc.Features[0].Properties.LengthM-500) > 6 {
		t.Errorf("got %s", b)
	}
}

// vincenty is the ellipsoidal (WGS-84) inverse geodesic distance, T. Vincenty
// 1975, accurate to well under a millimetre for the distances tested here.
func vincenty(lat1, lon1, lat2, lon2 float64) float64 {
	a, f := wgs84A, wgs84F
	b := a * (1 - f)
	L := (lon2 - lon1) * degRad
	U1 := math.Atan((1 - f) * math.Tan(lat1*degRad))
	U2 := math.Atan((1 - f) * math.Tan(lat2*degRad))
	sinU1, cosU1 := math.Sincos(U1)
	sinU2, cosU2 := math.Sincos(U2)
	lambda := L
	var sinSigma, cosSigma, sigma, cos2Alpha, cos2SigmaM float64
	for i := 0; i < 200; i++ {
		sinL, cosL := math.Sincos(lambda)
		sinSigma = math.Hypot(cosU2*sinL, cosU1*sinU2-sinU1*cosU2*cosL)
		cosSigma = sinU1*sinU2 + cosU1*cosU2*cosL
		sigma = math.Atan2(sinSigma, cosSigma)
		sinAlpha := cosU1 * cosU2 * sinL / sinSigma
		cos2Alpha = 1 - sinAlpha*sinAlpha
		cos2SigmaM = cosSigma - 2*sinU1*sinU2/cos2Alpha
		C := f / 16 * cos2Alpha * (4 + f*(4-3*cos2Alpha))
		prev := lambda
		lambda = L + (1-C)*f*sinAlpha*(sigma+C*sinSigma*(cos2SigmaM+C*cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)))
		if math.Abs(lambda-prev) < 1e-13 {
			break
		}
	}
	u2 := cos2Alpha * (a*a - b*b) / (b * b)
	A := 1 + u2/16384*(4096+u2*(-768+u2*(320-175*u2)))
	B := u2 / 1024 * (256 + u2*(-128+u2*(74-47*u2)))
	dSigma := B * sinSigma * (cos2SigmaM + B/4*(cosSigma*(-1+2*cos2SigmaM*cos2SigmaM)-
		B/6*cos2SigmaM*(-3+4*sinSigma*sinSigma)*(-3+4*cos2SigmaM*cos2SigmaM)))
	return b * A * (sigma - dSigma)
}

func TestLengthAccuracy(t *testing.T) {
	// Known value: one degree of latitude from 39.5 to 40.5 N on WGS-84 is
	// 111,035 m to the metre; the reference implementation must agree.
	if got := vincenty(39.5, 116, 40.5, 116); math.Abs(got-111035) > 1 {
		t.Fatalf("reference: got %.1f m for 39.5-40.5 N, want 111035", got)
	}
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
	}{
		{"10 km north", 39.90, 116.40, 39.90 + 0.0900625, 116.40},
		{"10 km east", 39.90, 116.40, 39.90, 116.40 + 0.1169},
		{"10 km north-east", 39.90, 116.40, 39.9637, 116.4827},
		{"10 km at 45.8 N (Harbin)", 45.75, 126.60, 45.81, 126.70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := vincenty(tt.lat1, tt.lon1, tt.lat2, tt.lon2)
			// one straight segment, and the same line cut into 1000 pieces
			one := DistanceM(tt.lat1, tt.lon1, tt.lat2, tt.lon2)
			var ls orb.LineString
			for i := 0; i <= 1000; i++ {
				f := float64(i) / 1000
				ls = append(ls, orb.Point{tt.lon1 + (tt.lon2-tt.lon1)*f, tt.lat1 + (tt.lat2-tt.lat1)*f})
			}
			many := LengthM(ls)
			for _, got := range []float64{one, many} {
				if err := math.Abs(got-want) / want; err > 0.005 {
					t.Errorf("got %.2f m, want %.2f m (error %.3f %%)", got, want, err*100)
				} else if err > 0.0002 {
					t.Logf("error %.4f %% (within the limit but larger than expected)", err*100)
				}
			}
		})
	}
}

// BenchmarkCoverage8h: an 8-hour sweeper track at 1 Hz (28,800 samples, 5 m
// jitter) against a 30 km route (ten 3 km streets, 300 m apart, driven as a
// serpentine twice over).
func BenchmarkCoverage8h(b *testing.B) {
	var xy []float64
	for row := 0; row < 10; row++ {
		y := float64(row) * 300
		if row%2 == 0 {
			xy = append(xy, 0, y, 3000, y)
		} else {
			xy = append(xy, 3000, y, 0, y)
		}
	}
	route := orb.MultiLineString{path(xy...)}
	// 8 h at 7 km/h is 56 km: the 30 km route (with 2.7 km of links) once,
	// then back to the start and most of it again.
	back := make([]float64, 0, len(xy))
	for i := len(xy) - 2; i >= 0; i -= 2 {
		back = append(back, xy[i], xy[i+1])
	}
	track := drive([]leg{on(7, xy...), on(7, back...)}, 5, 1)
	if len(track) > 8*3600 {
		track = track[:8*3600]
	}
	if len(track) < 8*3600-600 {
		b.Fatalf("track has %d samples", len(track))
	}
	opts := CoverageOptions{MaxSpeedKmh: 8, RequireBrush: true}
	b.ReportAllocs()
	var cov Coverage
	for b.Loop() {
		cov = ComputeCoverage(route, track, opts)
	}
	b.ReportMetric(cov.Fraction, "fraction")
	b.ReportMetric(float64(len(track)), "samples")
	b.ReportMetric(cov.LengthM/1000, "route_km")
}
