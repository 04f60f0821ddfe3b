package fleet

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/paulmach/orb"
)

var update = flag.Bool("update", false, "rewrite the want.txt files under testdata/places")

// The demo city (examples/demo) has three districts stacked north to south,
// each 0.2 degrees of longitude wide (116.30-116.50):
//
//	north   39.95-40.00
//	central 39.90-39.95, with a hole at 116.44-116.46 x 39.92-39.93
//	south   39.85-39.90, plus an exclave filling central's hole
//
// Bins bin-0001..bin-0200 have the category (n-1)%4 -> kitchen, recyclable,
// hazardous, other. Collection routes: trucks 01-04 empty the 50 kitchen
// bins, 05-06 recyclable, 07-08 hazardous, 09-10 other, each truck a
// contiguous share of its category's bins in ascending order.
const demo = "../examples/demo"

func loadDemo(t testing.TB) *Places {
	t.Helper()
	p, err := LoadPlaces(LoadOptions{}, filepath.Join(demo, "districts.geojson"), filepath.Join(demo, "sites.geojson"),
		filepath.Join(demo, "sweeping_routes.geojson"), filepath.Join(demo, "collection_routes.geojson"))
	if err != nil {
		t.Fatalf("demo city does not load: %v", err)
	}
	return p
}

func TestDemoLoads(t *testing.T) {
	p := loadDemo(t)
	if got := [5]int{len(p.Districts), len(p.Grids), len(p.Sites), len(p.SweepingRoutes), len(p.CollectionRoutes)}; got != [5]int{3, 7, 9, 8, 10} {
		t.Fatalf("got districts, grids, sites, sweeping, collection = %v, want [3 7 9 8 10]", got)
	}
	devices := demoDevices()
	if ps := p.CheckDevices(devices, "sweeping_routes.geojson", "collection_routes.geojson"); len(ps) > 0 {
		t.Fatalf("demo routes disagree with the demo fleet:\n%v", ps)
	}
	seen := map[string]bool{}
	for _, r := range p.CollectionRoutes {
		for _, b := range r.Bins {
			if seen[b] {
				t.Errorf("bin %s is on two routes", b)
			}
			seen[b] = true
		}
	}
	if len(seen) != 200 {
		t.Errorf("got %d bins on routes, want 200", len(seen))
	}
	// Every site lies in a district.
	for _, s := range p.Sites {
		c := s.Center
		if s.Area != nil {
			c = s.Area.Bound().Center()
		}
		if loc := p.Locate(c[1], c[0]); loc.District == "" || !containsStr(loc.Sites, s.ID) {
			t.Errorf("site %s: centre placed at %+v", s.ID, loc)
		}
	}
	if r, ok := p.SweepingRoute("sweep-07"); !ok || r.Schedule.Window.String() != "22:00-02:00" || len(r.Line) != 2 {
		t.Errorf("sweep-07: got %+v", r)
	}
	if got := len(p.RoutesOfSweeper("sweeper-03")); got != 1 {
		t.Errorf("routes of sweeper-03: got %d, want 1", got)
	}
	if got := len(p.RoutesOfTruck("truck-10")); got != 1 {
		t.Errorf("routes of truck-10: got %d, want 1", got)
	}
}

// demoDevices is the demo fleet the demo routes name.
func demoDevices() []Device {
	cats := []string{"kitchen", "recyclable", "hazardous", "other"}
	var devices []Device
	for n := 1; n <= 200; n++ {
		devices = append(devices, Device{ID: fmt.Sprintf("bin-%04d", n), Kind: "bin", Category: cats[(n-1)%4]})
	}
	truckCat := []string{"", "kitchen", "kitchen", "kitchen", "kitchen", "recyclable", "recyclable", "hazardous", "hazardous", "other", "other"}
	for n := 1; n <= 10; n++ {
		devices = append(devices, Device{ID: fmt.Sprintf("truck-%02d", n), Kind: "truck", Category: truckCat[n]})
	}
	for n := 1; n <= 8; n++ {
		devices = append(devices, Device{ID: fmt.Sprintf("sweeper-%02d", n), Kind: "sweeper"})
	}
	return devices
}

func TestLoadPlacesFor(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	devices := append(demoDevices(),
		Device{ID: "toilet-1", Kind: "toilet", District: "central", Lat: f(39.93), Lon: f(116.35)},
		Device{ID: "toilet-2", Kind: "toilet", District: "north", Lat: f(39.93), Lon: f(116.35)},
		Device{ID: "toilet-3", Kind: "toilet", District: "east"},
		Device{ID: "toilet-4", Kind: "toilet", Lat: f(39.5), Lon: f(116.35)},
	)
	cfg := &Config{File: filepath.Join(demo, "sanigate.yaml"), Devices: devices, Places: PlacesConfig{
		Districts: "districts.geojson", Sites: "sites.geojson",
		SweepingRoutes: "sweeping_routes.geojson", CollectionRoutes: "collection_routes.geojson",
	}}
	_, err := loadPlacesFor(cfg, LoadOptions{})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("got %v, want Problems", err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, strings.ReplaceAll(p.String(), demo+string(filepath.Separator), ""))
	}
	n := len(devices)
	want := []string{
		fmt.Sprintf(`sanigate.yaml: devices[%d].district: "north", but the device's position lies in "central"`, n-3),
		fmt.Sprintf(`sanigate.yaml: devices[%d].district: no district in districts.geojson has the id "east"`, n-2),
		fmt.Sprintf(`sanigate.yaml: devices[%d].lat: position (39.5, 116.35) lies outside every district`, n-1),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cfg.Devices = demoDevices()
	p, err := loadPlacesFor(cfg, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if loc, ok := p.LocateDevice(&devices[n-4]); !ok || loc.District != "central" {
		t.Errorf("LocateDevice: got %+v %v", loc, ok)
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestLocate(t *testing.T) {
	p := loadDemo(t)
	tests := []struct {
		name     string
		lat, lon float64
		want     Location
	}{
		{"north west", 39.97, 116.35, Location{District: "north", Grid: "north-w"}},
		{"central east", 39.91, 116.45, Location{District: "central", Grid: "central-e"}},
		{"in central's hole: south's exclave", 39.925, 116.45, Location{District: "south", Grid: "south-lake"}},
		{"on the hole's edge: the hole's owner", 39.92, 116.45, Location{District: "south", Grid: "south-lake"}},
		{"south main part", 39.86, 116.45, Location{District: "south", Grid: "south-e"}},
		{"border north/central: first in file", 39.95, 116.35, Location{District: "north", Grid: "north-w"}},
		{"border between grid cells: first in file", 39.97, 116.40, Location{District: "north", Grid: "north-w"}},
		{"outer corner", 40.00, 116.50, Location{District: "north", Grid: "north-e"}},
		{"outside the city", 39.80, 116.40, Location{}},
		{"swapped lat/lon finds nothing", 116.40, 39.90, Location{}},
		{"inside the kitchen waste plant", 39.862, 116.313, Location{District: "south", Grid: "south-w", Sites: []string{"kw-plant"}}},
		{"transfer station circle, 140 m east", 39.925, 116.380 + 140/85400.0, Location{District: "central", Grid: "central-w", Sites: []string{"ts-central"}}},
		{"transfer station circle, 160 m east", 39.925, 116.380 + 160/85400.0, Location{District: "central", Grid: "central-w"}},
		{"south farm circle", 39.857, 116.4905, Location{District: "south", Grid: "south-e", Sites: []string{"farm-south"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Locate(tt.lat, tt.lon); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Locate(%g, %g) = %+v, want %+v", tt.lat, tt.lon, got, tt.want)
			}
		})
	}
}

func TestLocateOverlappingSites(t *testing.T) {
	dir := t.TempDir()
	sites := `{"type": "FeatureCollection", "features": [
{"type": "Feature", "properties": {"id": "big", "kind": "landfill", "accepts": ["other"]},
 "geometry": {"type": "MultiPolygon", "coordinates": [
   [[[116.30, 39.90], [116.32, 39.90], [116.32, 39.92], [116.30, 39.92], [116.30, 39.90]],
    [[116.305, 39.905], [116.305, 39.915], [116.315, 39.915], [116.315, 39.905], [116.305, 39.905]]],
   [[[116.40, 39.90], [116.41, 39.90], [116.41, 39.91], [116.40, 39.90]]]]}},
{"type": "Feature", "properties": {"id": "small", "kind": "farm", "radius_m": 500}, "geometry": {"type": "Point", "coordinates": [116.319, 39.919]}}
]}`
	path := filepath.Join(dir, "sites.geojson")
	if err := os.WriteFile(path, []byte(sites), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPlaces(LoadOptions{}, "", path, "", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		lat, lon float64
		want     []string
	}{
		{"both", 39.918, 116.318, []string{"big", "small"}},
		{"in the hole", 39.91, 116.31, nil},
		{"second polygon", 39.901, 116.408, []string{"big"}},
		{"outside the triangle", 39.909, 116.401, nil},
		{"circle only", 39.921, 116.321, []string{"small"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Locate(tt.lat, tt.lon).Sites; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLoadProblems loads each folder under testdata/places and compares every
// problem reported with want.txt (go test -run TestLoadProblems -update
// rewrites them; read the diff before committing).
func TestLoadProblems(t *testing.T) {
	cases, err := os.ReadDir("testdata/places")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", "places", c.Name())
			file := func(name string) string {
				path := filepath.Join(dir, name)
				if _, err := os.Stat(path); err != nil {
					return ""
				}
				return path
			}
			var opts LoadOptions
			if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
				if err := json.Unmarshal(b, &opts); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadPlaces(opts, file("districts.geojson"), file("sites.geojson"),
				file("sweeping_routes.geojson"), file("collection_routes.geojson"))
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("got error %v, want Problems", err)
			}
			sort.SliceStable(ps, func(i, j int) bool {
				if ps[i].File != ps[j].File {
					return ps[i].File < ps[j].File
				}
				return ps[i].Line < ps[j].Line
			})
			lines := make([]string, len(ps))
			for i, p := range ps {
				lines[i] = strings.ReplaceAll(p.String(), dir+string(filepath.Separator), "")
			}
			got := strings.Join(lines, "\n") + "\n"
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got problems:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestCheckDevices(t *testing.T) {
	p := loadDemo(t)
	devices := []Device{
		{ID: "sweeper-01", Kind: "truck", Category: "other"},
		{ID: "truck-01", Kind: "truck", Category: "kitchen"},
		{ID: "bin-0001", Kind: "bin", Category: "kitchen"},
		{ID: "bin-0005", Kind: "bin", Category: "other"},
	}
	ps := p.CheckDevices(devices, "sw.geojson", "co.geojson")
	var msgs []string
	for _, pr := range ps {
		if strings.Contains(pr.Field, `"sweep-01"`) || strings.Contains(pr.Field, "bins[0]") && strings.Contains(pr.Field, `"collect-01"`) ||
			strings.Contains(pr.Field, "bins[1]") && strings.Contains(pr.Field, `"collect-01"`) {
			msgs = append(msgs, pr.String())
		}
	}
	want := []string{
		`sw.geojson:2: features[0] (id "sweep-01").properties.sweepers[0]: device "sweeper-01" is a truck, not a sweeper`,
		`co.geojson:2: features[0] (id "collect-01").properties.bins[1]: bin "bin-0005" holds other waste but truck "truck-01" collects kitchen`,
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
}

// benchPlaces builds a synthetic city: n districts in a row, each split into
// cells grid cells, and sites scattered among them (every third a circle).
func benchPlaces(b *testing.B, districts, cells, sites int) *Places {
	b.Helper()
	p := &Places{}
	w := 0.3 / float64(districts)
	for d := 0; d < districts; d++ {
		x0 := 116.2 + float64(d)*w
		p.Districts = append(p.Districts, District{ID: fmt.Sprintf("d%d", d),
			Area: orb.MultiPolygon{{boxRing(x0, 39.8, x0+w, 40.1)}}})
	}
	per := cells / districts
	for c := 0; c < cells; c++ {
		d := c / per
		if d >= districts {
			d = districts - 1
		}
		x0 := 116.2 + float64(d)*w
		h := 0.3 / float64(per)
		y0 := 39.8 + float64(c%per)*h
		p.Grids = append(p.Grids, GridCell{ID: fmt.Sprintf("g%d", c), District: p.Districts[d].ID,
			Area: orb.MultiPolygon{{boxRing(x0, y0, x0+w, y0+h)}}})
	}
	for s := 0; s < sites; s++ {
		x := 116.2 + 0.3*float64((s*37)%100)/100
		y := 39.8 + 0.3*float64((s*53)%100)/100
		site := Site{ID: fmt.Sprintf("s%d", s), Kind: "depot"}
		if s%3 == 0 {
			site.Center, site.RadiusM = orb.Point{x, y}, 300
		} else {
			site.Area = orb.MultiPolygon{{boxRing(x, y, x+0.004, y+0.003)}}
		}
		p.Sites = append(p.Sites, site)
	}
	p.index()
	return p
}

func boxRing(w, s, e, n float64) orb.Ring {
	return orb.Ring{{w, s}, {e, s}, {e, n}, {w, n}, {w, s}}
}

func benchLocate(b *testing.B, p *Places) {
	// A fixed pseudo-random walk over the city, so runs compare.
	pts := make([][2]float64, 1024)
	for i := range pts {
		pts[i] = [2]float64{39.8 + 0.3*float64((i*7919)%1000)/1000, 116.2 + 0.3*float64((i*104729)%1000)/1000}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pt := pts[i%len(pts)]
		p.Locate(pt[0], pt[1])
	}
}

// BenchmarkLocate: 3 districts, 50 grid cells, 20 sites.
func BenchmarkLocate(b *testing.B) { benchLocate(b, benchPlaces(b, 3, 50, 20)) }

// BenchmarkLocate500: 500 districts, cells and sites in all (20, 280, 200).
func BenchmarkLocate500(b *testing.B) { benchLocate(b, benchPlaces(b, 20, 280, 200)) }
