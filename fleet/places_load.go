package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/geojson"
)

// LoadOptions tunes LoadPlaces. The zero value is the default.
type LoadOptions struct {
	// Location is the time zone of route windows; nil means DefaultTimezone.
	Location *time.Location `yaml:"-"`
	// CityBounds, when set, is [west, south, east, north] in degrees: every
	// feature's centre must lie inside it. Without it, a feature is reported
	// as lat/lon swapped when it lies more than FarKm from the median centre
	// of all features and swapping its coordinates would bring it within
	// FarKm (the median is not pulled away by a few wrong features).
	CityBounds []float64 `yaml:"bounds"`
	// FarKm is the distance for the swap rule above; default 100 km.
	FarKm float64 `yaml:"far_km"`
}

// LoadPlaces loads the city's map from GeoJSON FeatureCollections; an empty
// path means the file is not used. Every problem in every file is reported
// at once, as Problems. (Load does it for a configuration file, which names
// the files and checks them against its devices.)
//
// districts holds features with property kind "district" (the default) or
// "grid", an id, a name, and for a grid cell the id of its district; their
// geometry is a Polygon (holes allowed) or a MultiPolygon. sites holds
// Polygon or MultiPolygon features, or Points with radius_m for circles, with
// a kind from SiteKinds and accepts, the categories the site may receive.
// sweepingRoutes holds LineString or MultiLineString features with id,
// window ("05:00-08:00"), days (optional, [mon, wed]), max_speed_kmh,
// contractor, sweepers (device ids) and one_way (optional). collectionRoutes
// holds features with id, bins (device ids in order), window, days and
// truck; their geometry may be null.
//
// A problem names the file, the line where the feature starts, and the
// feature as `features[3] (id "north")` followed by the property.
func LoadPlaces(opts LoadOptions, districts, sites, sweepingRoutes, collectionRoutes string) (*Places, error) {
	loc := opts.Location
	if loc == nil {
		var err error
		if loc, err = CityLocation(""); err != nil {
			return nil, err
		}
	}
	l := &loader{loc: loc, places: &Places{}}
	if len(opts.CityBounds) != 0 && len(opts.CityBounds) != 4 {
		l.ps.Add("", 0, "places.bounds", "expected [west, south, east, north], got %d numbers", len(opts.CityBounds))
	}
	if districts != "" {
		l.loadDistricts(districts)
	}
	if sites != "" {
		l.loadSites(sites)
	}
	if sweepingRoutes != "" {
		l.loadSweeping(sweepingRoutes)
	}
	if collectionRoutes != "" {
		l.loadCollection(collectionRoutes)
	}
	l.checkGrids()
	l.checkPlacement(opts)
	if err := l.ps.Err(); err != nil {
		return nil, err
	}
	l.places.index()
	return l.places, nil
}

type loader struct {
	loc    *time.Location
	places *Places
	ps     Problems
	// centres of valid geometries, for the swapped-coordinates rule
	centres []centre
	// where each grid cell came from, to report an unknown district
	gridAt []featureRef
}

type centre struct {
	ref featureRef
	c   orb.Point
}

// featureRef names one feature of one file in problems.
type featureRef struct {
	file  string
	line  int
	index int
	id    string
}

func (r featureRef) field(sub string) string {
	f := fmt.Sprintf("features[%d]", r.index)
	if r.id != "" {
		f += fmt.Sprintf(" (id %q)", r.id)
	}
	if sub != "" {
		f += "." + sub
	}
	return f
}

func (l *loader) add(r featureRef, sub, format string, args ...any) {
	l.ps.Add(r.file, r.line, r.field(sub), format, args...)
}

// rawFeature is one feature with the line it starts on.
type rawFeature struct {
	ref   featureRef
	f     *geojson.Feature
	props geojson.Properties
}

// readFeatures reads a FeatureCollection, noting where each feature starts:
// encoding/json reports offsets, which a running newline count turns into
// lines without a second parse.
func (l *loader) readFeatures(path string) []rawFeature {
	data, err := os.ReadFile(path)
	if err != nil {
		l.ps.Add(path, 0, "", "%v", err)
		return nil
	}
	lineAt := lineCounter(data)
	syntax := func(err error) { l.decodeError(path, len(data), lineAt, err) }
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		syntax(err)
		return nil
	} else if tok != json.Delim('{') {
		l.ps.Add(path, 1, "", "expected a GeoJSON FeatureCollection object")
		return nil
	}
	var out []rawFeature
	sawFeatures, typ := false, ""
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			syntax(err)
			return nil
		}
		key, _ := tok.(string)
		if key != "features" {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				syntax(err)
				return nil
			}
			if key == "type" {
				_ = json.Unmarshal(v, &typ)
			}
			continue
		}
		sawFeatures = true
		if tok, err := dec.Token(); err != nil {
			syntax(err)
			return nil
		} else if tok != json.Delim('[') {
			l.ps.Add(path, lineAt(int(dec.InputOffset())), "features", "expected a list of features")
			return nil
		}
		for i := 0; dec.More(); i++ {
			start := int(dec.InputOffset())
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				syntax(err)
				return nil
			}
			for start < len(data) && strings.IndexByte(" \t\r\n,", data[start]) >= 0 {
				start++
			}
			ref := featureRef{file: path, line: lineAt(start), index: i}
			out = append(out, l.decodeFeature(ref, raw))
		}
		if _, err := dec.Token(); err != nil {
			syntax(err)
			return nil
		}
	}
	if typ != "FeatureCollection" {
		l.ps.Add(path, 1, "type", "expected \"FeatureCollection\", got %q", typ)
	}
	if !sawFeatures {
		l.ps.Add(path, 1, "features", "missing")
	}
	return out
}

// decodeError adds the problem of a JSON decoding error in the file at
// path, of size bytes, at the line lineAt gives for its offset.
func (l *loader) decodeError(path string, size int, lineAt func(int) int, err error) {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		l.ps.Add(path, lineAt(int(se.Offset)), "", "not valid JSON: %v", se)
	case errors.As(err, &te):
		l.ps.Add(path, lineAt(int(te.Offset)), te.Field, "not valid GeoJSON: %v", te)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		l.ps.Add(path, lineAt(size), "", "not valid JSON: unexpected end of file")
	default:
		l.ps.Add(path, 0, "", "not valid JSON: %v", err)
	}
}

// lineCounter returns a function from byte offset to 1-based line; offsets
// must not decrease between calls, except to restart from the beginning.
func lineCounter(data []byte) func(int) int {
	off, line := 0, 1
	return func(at int) int {
		if at > len(data) {
			at = len(data)
		}
		if at < off {
			off, line = 0, 1
		}
		line += bytes.Count(data[off:at], []byte{'\n'})
		off = at
		return line
	}
}

func (l *loader) decodeFeature(ref featureRef, raw json.RawMessage) rawFeature {
	rf := rawFeature{ref: ref}
	// Read the id first, so that a broken geometry is still named by it.
	var head struct {
		ID         any            `json:"id"`
		Properties map[string]any `json:"properties"`
		Geometry   *struct {
			Type string `json:"type"`
		} `json:"geometry"`
	}
	_ = json.Unmarshal(raw, &head)
	if s, ok := head.Properties["id"].(string); ok {
		rf.ref.id = s
	} else if head.ID != nil {
		rf.ref.id = fmt.Sprint(head.ID)
	}
	f, err := geojson.UnmarshalFeature(raw)
	if err != nil {
		if head.Geometry != nil && !contains(geometryTypes, head.Geometry.Type) {
			l.add(rf.ref, "geometry.type", "%q is not a GeoJSON geometry type (known: %s)", head.Geometry.Type, strings.Join(geometryTypes, ", "))
			return rf
		}
		l.add(rf.ref, "", "%v", strings.TrimPrefix(err.Error(), "geojson: "))
		return rf
	}
	rf.f = f
	rf.props = f.Properties
	if rf.props == nil {
		rf.props = geojson.Properties{}
	}
	return rf
}

var geometryTypes = []string{"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}

// Property readers: each reports a problem and returns the zero value when
// the property has the wrong type.

func (l *loader) str(rf rawFeature, key string, required bool) string {
	v, ok := rf.props[key]
	if !ok || v == nil {
		if required {
			l.add(rf.ref, "properties."+key, "missing")
		}
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		l.add(rf.ref, "properties."+key, "expected a string, got %v", v)
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		l.add(rf.ref, "properties."+key, "is empty")
	}
	return s
}

func (l *loader) strList(rf rawFeature, key string) (list []string, present bool) {
	v, ok := rf.props[key]
	if !ok || v == nil {
		return nil, false
	}
	items, isList := v.([]any)
	if !isList {
		l.add(rf.ref, "properties."+key, "expected a list of strings, got %v", v)
		return nil, true
	}
	list = make([]string, 0, len(items))
	for i, it := range items {
		s, isStr := it.(string)
		if !isStr || s == "" {
			l.add(rf.ref, fmt.Sprintf("properties.%s[%d]", key, i), "expected a non-empty string, got %v", it)
			continue
		}
		list = append(list, s)
	}
	return list, true
}

func (l *loader) num(rf rawFeature, key string) (float64, bool) {
	v, ok := rf.props[key]
	if !ok || v == nil {
		return 0, false
	}
	f, isNum := v.(float64)
	if !isNum {
		l.add(rf.ref, "properties."+key, "expected a number, got %v", v)
		return 0, false
	}
	return f, true
}

func (l *loader) schedule(rf rawFeature) Schedule {
	s := Schedule{Loc: l.loc}
	if w := l.str(rf, "window", true); w != "" {
		win, err := ParseWindow(w)
		if err != nil {
			l.add(rf.ref, "properties.window", "%v", err)
		}
		s.Window = win
	}
	days, _ := l.strList(rf, "days")
	for i, d := range days {
		wd, err := ParseWeekday(d)
		if err != nil {
			l.add(rf.ref, fmt.Sprintf("properties.days[%d]", i), "%v", err)
			continue
		}
		s.Days = append(s.Days, wd)
	}
	return s
}

// uniqueID checks that the feature has an id not used before in seen.
func (l *loader) uniqueID(rf rawFeature, seen map[string]featureRef) string {
	id := l.str(rf, "id", true)
	if id == "" {
		return ""
	}
	if prev, dup := seen[id]; dup {
		l.add(rf.ref, "properties.id", "%q is already used by features[%d] (line %d)", id, prev.index, prev.line)
		return id
	}
	seen[id] = rf.ref
	return id
}

// area checks a Polygon or MultiPolygon geometry and returns it as a
// MultiPolygon, or nil after reporting its problems.
func (l *loader) area(rf rawFeature) orb.MultiPolygon {
	var mp orb.MultiPolygon
	switch g := rf.f.Geometry.(type) {
	case orb.Polygon:
		mp = orb.MultiPolygon{g}
	case orb.MultiPolygon:
		mp = g
	case nil:
		l.add(rf.ref, "geometry", "missing: expected a Polygon or MultiPolygon")
		return nil
	default:
		l.add(rf.ref, "geometry", "expected a Polygon or MultiPolygon, got %s", g.GeoJSONType())
		return nil
	}
	if len(mp) == 0 {
		l.add(rf.ref, "geometry", "has no polygons")
		return nil
	}
	ok := true
	for pi, poly := range mp {
		if len(poly) == 0 {
			l.add(rf.ref, "geometry", "polygon %d has no rings", pi)
			ok = false
		}
		for ri, ring := range poly {
			where := fmt.Sprintf("geometry.coordinates[%d]", ri)
			if len(mp) > 1 {
				where = fmt.Sprintf("geometry.coordinates[%d][%d]", pi, ri)
			}
			if !l.positions(rf, where, orb.LineString(ring)) {
				ok = false
				continue
			}
			for _, msg := range ringProblems(ring) {
				l.add(rf.ref, where, "%s", msg)
				ok = false
			}
		}
	}
	if !ok {
		return nil
	}
	l.centres = append(l.centres, centre{rf.ref, mp.Bound().Center()})
	return mp
}

// line checks a LineString or MultiLineString geometry (null allowed when
// optional) and returns it as a MultiLineString.
func (l *loader) line(rf rawFeature, optional bool) (orb.MultiLineString, bool) {
	var ml orb.MultiLineString
	switch g := rf.f.Geometry.(type) {
	case orb.LineString:
		ml = orb.MultiLineString{g}
	case orb.MultiLineString:
		ml = g
	case nil:
		if optional {
			return nil, true
		}
		l.add(rf.ref, "geometry", "missing: expected a LineString or MultiLineString")
		return nil, false
	default:
		l.add(rf.ref, "geometry", "expected a LineString or MultiLineString, got %s", g.GeoJSONType())
		return nil, false
	}
	ok := len(ml) > 0
	if !ok {
		l.add(rf.ref, "geometry", "has no lines")
	}
	for i, ls := range ml {
		where := "geometry.coordinates"
		if len(ml) > 1 {
			where = fmt.Sprintf("geometry.coordinates[%d]", i)
		}
		if len(ls) < 2 {
			l.add(rf.ref, where, "a line needs at least 2 positions, got %d", len(ls))
			ok = false
			continue
		}
		if !l.positions(rf, where, ls) {
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	l.centres = append(l.centres, centre{rf.ref, ml.Bound().Center()})
	return ml, true
}

// positions reports the first bad position of a ring or line (and how many
// there are, since a swapped feature has them all wrong).
func (l *loader) positions(rf rawFeature, where string, pts orb.LineString) bool {
	first, firstAt, bad := "", 0, 0
	for i, p := range pts {
		if msg, _ := validPosition(p); msg != "" {
			if bad == 0 {
				first, firstAt = msg, i
			}
			bad++
		}
	}
	if bad == 0 {
		return true
	}
	if bad > 1 {
		first += fmt.Sprintf(" (and %d more positions)", bad-1)
	}
	l.add(rf.ref, fmt.Sprintf("%s[%d]", where, firstAt), "%s", first)
	return false
}

func (l *loader) loadDistricts(path string) {
	seenD, seenG := map[string]featureRef{}, map[string]featureRef{}
	for _, rf := range l.readFeatures(path) {
		if rf.f == nil {
			continue
		}
		kind := l.str(rf, "kind", false)
		if kind == "" {
			kind = "district"
			if _, ok := rf.props["district"]; ok {
				kind = "grid"
			}
		}
		switch kind {
		case "district":
			d := District{ID: l.uniqueID(rf, seenD), Name: l.str(rf, "name", false), Area: l.area(rf)}
			l.places.Districts = append(l.places.Districts, d)
		case "grid":
			g := GridCell{ID: l.uniqueID(rf, seenG), Name: l.str(rf, "name", false),
				District: l.str(rf, "district", true), Area: l.area(rf)}
			l.places.Grids = append(l.places.Grids, g)
			l.gridAt = append(l.gridAt, rf.ref)
		default:
			l.add(rf.ref, "properties.kind", "%q is neither \"district\" nor \"grid\"", kind)
		}
	}
}

func (l *loader) checkGrids() {
	for i, g := range l.places.Grids {
		if g.District == "" {
			continue
		}
		found := false
		for _, d := range l.places.Districts {
			found = found || d.ID == g.District
		}
		if !found {
			l.add(l.gridAt[i], "properties.district", "no district has the id %q", g.District)
		}
	}
}

func (l *loader) loadSites(path string) {
	seen := map[string]featureRef{}
	for _, rf := range l.readFeatures(path) {
		if rf.f == nil {
			continue
		}
		s := Site{ID: l.uniqueID(rf, seen), Name: l.str(rf, "name", false), Kind: l.str(rf, "kind", true)}
		if s.Kind != "" && !contains(SiteKinds, s.Kind) {
			l.add(rf.ref, "properties.kind", "%q is not a site kind (known: %s)", s.Kind, strings.Join(SiteKinds, ", "))
		}
		accepts, present := l.strList(rf, "accepts")
		for i, c := range accepts {
			if !contains(Categories, c) {
				l.add(rf.ref, fmt.Sprintf("properties.accepts[%d]", i), "%q is not a sorting category (known: %s)", c, strings.Join(Categories, ", "))
			}
		}
		switch {
		case s.Kind == "farm" && len(accepts) > 0:
			l.add(rf.ref, "properties.accepts", "a farm is a forbidden destination and accepts no waste")
		case !present && s.Kind != "farm" && s.Kind != "depot":
			l.add(rf.ref, "properties.accepts", "missing: list the categories the site may receive ([] for none)")
		}
		s.Accepts = accepts
		if pt, isPoint := rf.f.Geometry.(orb.Point); isPoint {
			_, present := rf.props["radius_m"]
			r, ok := l.num(rf, "radius_m")
			switch {
			case !present:
				l.add(rf.ref, "properties.radius_m", "missing: a Point site is a circle and needs its radius in metres")
			case !ok:
			case r <= 0 || r > 50000:
				l.add(rf.ref, "properties.radius_m", "must be between 0 and 50000 m, got %g", r)
			}
			if msg, _ := validPosition(pt); msg != "" {
				l.add(rf.ref, "geometry.coordinates", "%s", msg)
			} else {
				l.centres = append(l.centres, centre{rf.ref, pt})
			}
			s.Center, s.RadiusM = pt, r
		} else {
			s.Area = l.area(rf)
		}
		l.places.Sites = append(l.places.Sites, s)
	}
}

func (l *loader) loadSweeping(path string) {
	seen := map[string]featureRef{}
	for _, rf := range l.readFeatures(path) {
		if rf.f == nil {
			continue
		}
		r := SweepingRoute{ID: l.uniqueID(rf, seen), Name: l.str(rf, "name", false), line: rf.ref.line}
		r.Schedule = l.schedule(rf)
		r.Contractor = l.str(rf, "contractor", true)
		if v, ok := l.num(rf, "max_speed_kmh"); !ok {
			l.add(rf.ref, "properties.max_speed_kmh", "missing: the highest speed at which the street counts as swept")
		} else if v <= 0 || v > 60 {
			l.add(rf.ref, "properties.max_speed_kmh", "must be between 0 and 60, got %g", v)
		} else {
			r.MaxSpeedKmh = v
		}
		sweepers, _ := l.strList(rf, "sweepers")
		if len(sweepers) == 0 {
			l.add(rf.ref, "properties.sweepers", "missing: list the sweepers (device ids) that work the route")
		}
		r.Sweepers = sweepers
		if v, ok := rf.props["one_way"]; ok {
			b, isBool := v.(bool)
			if !isBool {
				l.add(rf.ref, "properties.one_way", "expected true or false, got %v", v)
			}
			r.OneWay = b
		}
		r.Line, _ = l.line(rf, false)
		r.LengthM = LengthM(r.Line)
		l.places.SweepingRoutes = append(l.places.SweepingRoutes, r)
	}
}

func (l *loader) loadCollection(path string) {
	seen := map[string]featureRef{}
	for _, rf := range l.readFeatures(path) {
		if rf.f == nil {
			continue
		}
		r := CollectionRoute{ID: l.uniqueID(rf, seen), Name: l.str(rf, "name", false), line: rf.ref.line}
		r.Schedule = l.schedule(rf)
		r.Truck = l.str(rf, "truck", true)
		bins, _ := l.strList(rf, "bins")
		if len(bins) == 0 {
			l.add(rf.ref, "properties.bins", "missing: list the bins (device ids) in collection order")
		}
		at := map[string]int{}
		for i, b := range bins {
			if j, dup := at[b]; dup {
				l.add(rf.ref, fmt.Sprintf("properties.bins[%d]", i), "%q is already listed at bins[%d]", b, j)
			}
			at[b] = i
		}
		r.Bins = bins
		r.Line, _ = l.line(rf, true)
		l.places.CollectionRoutes = append(l.places.CollectionRoutes, r)
	}
}

// checkPlacement applies the city-bounds and swapped-coordinates rules (see
// LoadOptions) to every feature whose geometry was otherwise valid.
func (l *loader) checkPlacement(opts LoadOptions) {
	farM := opts.FarKm * 1000
	if farM <= 0 {
		farM = 100e3
	}
	swap := func(p orb.Point) orb.Point { return orb.Point{p[1], p[0]} }
	if len(opts.CityBounds) == 4 {
		b := orb.Bound{Min: orb.Point{opts.CityBounds[0], opts.CityBounds[1]}, Max: orb.Point{opts.CityBounds[2], opts.CityBounds[3]}}
		for _, c := range l.centres {
			if b.Contains(c.c) {
				continue
			}
			hint := ""
			if b.Contains(swap(c.c)) {
				hint = ": lat/lon swapped? GeoJSON positions are [longitude, latitude]"
			}
			l.add(c.ref, "geometry", "centre (lon %.5f, lat %.5f) lies outside the city bounds%s", c.c[0], c.c[1], hint)
		}
		return
	}
	if len(l.centres) < 3 {
		return
	}
	lons := make([]float64, len(l.centres))
	lats := make([]float64, len(l.centres))
	for i, c := range l.centres {
		lons[i], lats[i] = c.c[0], c.c[1]
	}
	sort.Float64s(lons)
	sort.Float64s(lats)
	mid := orb.Point{lons[len(lons)/2], lats[len(lats)/2]}
	// Haversine (orb/geo) rather than DistanceM: these distances may span continents.
	for _, c := range l.centres {
		far := geo.DistanceHaversine(c.c, mid)
		if far <= farM {
			continue
		}
		s := swap(c.c)
		if math.Abs(s[1]) > 90 {
			continue
		}
		if near := geo.DistanceHaversine(s, mid); near <= farM {
			l.add(c.ref, "geometry", "lies %.0f km from the rest of the map; with lat/lon swapped it would be %.1f km from it: GeoJSON positions are [longitude, latitude]",
				far/1000, near/1000)
		}
	}
}

// loadPlacesFor loads the map that cfg names (paths relative to the
// configuration file, windows in the city's time zone) and cross-checks it
// with the registered devices: route members must exist with the right kind
// and category (CheckDevices), and a device's district must be a known one
// and, when the device has a registered position, the district it lies in.
// opts.Location, when nil, becomes cfg.Location(). Every problem of every
// file is returned at once, as Problems.
func loadPlacesFor(cfg *Config, opts LoadOptions) (*Places, error) {
	if opts.Location == nil {
		opts.Location = cfg.Location()
	}
	pc := cfg.Places
	places, err := LoadPlaces(opts, cfg.Resolve(pc.Districts), cfg.Resolve(pc.Sites),
		cfg.Resolve(pc.SweepingRoutes), cfg.Resolve(pc.CollectionRoutes))
	if err != nil {
		return nil, err
	}
	ps := places.CheckDevices(cfg.Devices, cfg.Resolve(pc.SweepingRoutes), cfg.Resolve(pc.CollectionRoutes))
	if len(places.Districts) > 0 {
		for i := range cfg.Devices {
			d := &cfg.Devices[i]
			field := fmt.Sprintf("devices[%d].district", i)
			if d.District != "" {
				if _, ok := places.District(d.District); !ok {
					ps.Add(cfg.File, cfg.line(field), field, "no district in %s has the id %q", pc.Districts, d.District)
					continue
				}
			}
			loc, ok := places.LocateDevice(d)
			switch {
			case !ok:
			case loc.District == "":
				f := fmt.Sprintf("devices[%d].lat", i)
				ps.Add(cfg.File, cfg.line(f), f, "position (%g, %g) lies outside every district", *d.Lat, *d.Lon)
			case d.District != "" && loc.District != d.District:
				ps.Add(cfg.File, cfg.line(field), field, "%q, but the device's position lies in %q", d.District, loc.District)
			}
		}
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return places, nil
}

// LocateDevice places a device by its registered position; ok is false when
// it has none (a moving device is placed by its readings instead).
func (p *Places) LocateDevice(d *Device) (loc Location, ok bool) {
	if d.Lat == nil || d.Lon == nil {
		return Location{}, false
	}
	return p.Locate(*d.Lat, *d.Lon), true
}
