package simulators

import (
	"fmt"
	"math"

	"github.com/sanigate/sanigate/fleet"
)

// The demo city: three districts side by side from south to north over
// lon 116.30-116.50, lat 39.85-40.00 (see examples/demo/*.geojson).
var (
	DemoSouthWest = Point{39.85, 116.30}
	DemoNorthEast = Point{40.00, 116.50}
	// DemoPlant is the kitchen-waste plant where kitchen trucks unload; other
	// trucks unload at the transfer station.
	DemoPlant           = Point{39.872, 116.335}
	DemoTransferStation = Point{39.978, 116.472}
	DemoDepot           = Point{39.925, 116.305}
)

// Demo sizes.
const (
	DemoBins     = 200
	DemoTrucks   = 10
	DemoToilets  = 20
	DemoSweepers = 8
)

// DemoCategories is the sorting category of bin n (1-based): they cycle.
func DemoCategory(n int) string {
	return []string{"kitchen", "recyclable", "hazardous", "other"}[(n-1)%4]
}

// DemoTruckCategory is the category truck n (1-based) carries: 1-4 kitchen,
// 5-6 recyclable, 7-8 hazardous, 9-10 other (as examples/demo/collection_routes.geojson).
func DemoTruckCategory(n int) string {
	switch {
	case n <= 4:
		return "kitchen"
	case n <= 6:
		return "recyclable"
	case n <= 8:
		return "hazardous"
	default:
		return "other"
	}
}

// DemoBinPosition places bin n (1-based) on a 20 x 10 grid of streets
// inside the city, away from the district borders.
func DemoBinPosition(n int) Point {
	i := n - 1
	col, row := i%20, i/20
	return Point{
		Lat: round(39.857+float64(row)*0.0145+0.002*math.Sin(float64(i)), 6),
		Lon: round(116.31+float64(col)*0.0095+0.001*math.Cos(float64(i)), 6),
	}
}

// DemoToiletPosition places toilet n (1-based).
func DemoToiletPosition(n int) Point {
	i := n - 1
	return Point{Lat: round(39.86+float64(i%5)*0.032, 6), Lon: round(116.32+float64(i/5)*0.045, 6)}
}

// DemoToiletClass is the class of toilet n: 1, 2, 3 in turn.
func DemoToiletClass(n int) int { return (n-1)%3 + 1 }

// DemoSweeperPath is the street sweeper n (1-based) sweeps: an east-west
// street of about 2 km, two per district row.
func DemoSweeperPath(n int) []Point {
	i := n - 1
	lat := 39.862 + float64(i)*0.0175
	lon0 := 116.32 + float64(i%3)*0.05
	var pts []Point
	for k := 0; k <= 4; k++ {
		pts = append(pts, Point{Lat: round(lat+0.0003*float64(k%2), 6), Lon: round(lon0+float64(k)*0.006, 6)})
	}
	return pts
}

// DemoBinID, DemoTruckID, DemoToiletID and DemoSweeperID name demo devices.
func DemoBinID(n int) string     { return fmt.Sprintf("bin-%04d", n) }
func DemoTruckID(n int) string   { return fmt.Sprintf("truck-%02d", n) }
func DemoToiletID(n int) string  { return fmt.Sprintf("toilet-%02d", n) }
func DemoSweeperID(n int) string { return fmt.Sprintf("sweeper-%02d", n) }

// DemoPassword is the password of a demo device. Demo only: a real fleet's
// passwords are per device and secret.
func DemoPassword(id string) string { return "demo-" + id }

// FleetFrom builds simulated devices for the devices of a configuration:
// bins and toilets at their registered positions, trucks visiting the bins of
// their collection route and unloading at a site that accepts their category,
// sweepers driving their sweeping route. Devices without what they need (a
// truck without a route, say) get the demo layout instead.
func FleetFrom(cfg *fleet.Config, seed uint64) []Device {
	var out []Device
	bins := map[string]*Bin{}
	pos := func(d *fleet.Device, fallback Point) Point {
		if d.Lat != nil && d.Lon != nil {
			return Point{*d.Lat, *d.Lon}
		}
		return fallback
	}
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		if d.Transport == "modbus" {
			continue // served by the Modbus simulators
		}
		if d.Kind == "bin" {
			b := NewBin(seed, d.ID, d.Category, pos(d, DemoBinPosition(i+1)))
			bins[d.ID] = b
			out = append(out, b)
		}
	}
	m := cfg.Map
	depot := siteFor(m, []string{"depot"}, "", DemoDepot)
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		if d.Transport == "modbus" {
			continue
		}
		switch d.Kind {
		case "truck":
			mine := routeBins(m, d.ID, bins)
			plant := siteFor(m, []string{"kitchen_waste_plant", "transfer_station", "recycling_centre", "hazardous_facility", "incinerator", "landfill"}, d.Category, DemoTransferStation)
			capKG := d.CapacityKG
			if capKG == 0 {
				capKG = 8000
			}
			out = append(out, NewTruck(seed, d.ID, capKG, depot, plant, mine))
		case "toilet":
			out = append(out, NewToilet(seed, d.ID, d.Class))
		case "sweeper":
			path := sweeperPath(m, d.ID, DemoSweeperPath(1+i%DemoSweepers))
			out = append(out, NewSweeper(seed, d.ID, path))
		}
	}
	return out
}

// siteFor returns the centre of the first site of m of one of kinds that
// accepts category (any when empty), or fallback when there is none.
func siteFor(m *fleet.Places, kinds []string, category string, fallback Point) Point {
	if m == nil {
		return fallback
	}
	for _, s := range m.Sites {
		for _, k := range kinds {
			if s.Kind == k && (category == "" || s.AcceptsCategory(category)) {
				c := s.Center
				if s.RadiusM == 0 {
					c = s.Area.Bound().Center()
				}
				return Point{c.Lat(), c.Lon()}
			}
		}
	}
	return fallback
}

// routeBins returns the simulated bins on the collection routes of truck.
func routeBins(m *fleet.Places, truck string, bins map[string]*Bin) []*Bin {
	var mine []*Bin
	if m != nil {
		for _, r := range m.RoutesOfTruck(truck) {
			for _, id := range r.Bins {
				if b, ok := bins[id]; ok {
					mine = append(mine, b)
				}
			}
		}
	}
	return mine
}

// sweeperPath returns the first line of the first sweeping route of
// sweeper with two points or more, or fallback when it has none; the path
// reuses fallback's storage.
func sweeperPath(m *fleet.Places, sweeper string, fallback []Point) []Point {
	path := fallback
	if m != nil {
		for _, r := range m.RoutesOfSweeper(sweeper) {
			if len(r.Line) > 0 && len(r.Line[0]) >= 2 {
				path = path[:0]
				for _, p := range r.Line[0] {
					path = append(path, Point{p.Lat(), p.Lon()})
				}
				break
			}
		}
	}
	return path
}
