package simulators

import (
	"fmt"
	"math"
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
// 5-6 recyclable, 7 hazardous, 8-10 other.
func DemoTruckCategory(n int) string {
	switch {
	case n <= 4:
		return "kitchen"
	case n <= 6:
		return "recyclable"
	case n == 7:
		return "hazardous"
	default:
		return "other"
	}
}

// DemoDistrict names the district a latitude falls in.
func DemoDistrict(lat float64) string {
	switch {
	case lat >= 39.95:
		return "north"
	case lat >= 39.90:
		return "central"
	default:
		return "south"
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

// DemoTruckBins lists the bins truck n collects: the bins of its category,
// shared out in turn among the trucks of that category.
func DemoTruckBins(n int) []int {
	cat := DemoTruckCategory(n)
	var same []int
	for t := 1; t <= DemoTrucks; t++ {
		if DemoTruckCategory(t) == cat {
			same = append(same, t)
		}
	}
	idx := 0
	for k, t := range same {
		if t == n {
			idx = k
		}
	}
	var bins []int
	j := 0
	for b := 1; b <= DemoBins; b++ {
		if DemoCategory(b) != cat {
			continue
		}
		if j%len(same) == idx {
			bins = append(bins, b)
		}
		j++
	}
	return bins
}

// DemoBinID, DemoTruckID, DemoToiletID and DemoSweeperID name demo devices.
func DemoBinID(n int) string     { return fmt.Sprintf("bin-%04d", n) }
func DemoTruckID(n int) string   { return fmt.Sprintf("truck-%02d", n) }
func DemoToiletID(n int) string  { return fmt.Sprintf("toilet-%02d", n) }
func DemoSweeperID(n int) string { return fmt.Sprintf("sweeper-%02d", n) }

// DemoPassword is the password of a demo device. Demo only: a real fleet's
// passwords are per device and secret.
func DemoPassword(id string) string { return "demo-" + id }

// DemoFleet builds the simulated devices of the demo city.
func DemoFleet(seed uint64) []Device {
	var out []Device
	bins := make([]*Bin, DemoBins+1)
	for n := 1; n <= DemoBins; n++ {
		bins[n] = NewBin(seed, DemoBinID(n), DemoCategory(n), DemoBinPosition(n))
		out = append(out, bins[n])
	}
	for n := 1; n <= DemoTrucks; n++ {
		var mine []*Bin
		for _, b := range DemoTruckBins(n) {
			mine = append(mine, bins[b])
		}
		plant := DemoTransferStation
		if DemoTruckCategory(n) == "kitchen" {
			plant = DemoPlant
		}
		out = append(out, NewTruck(seed, DemoTruckID(n), 8000, DemoDepot, plant, mine))
	}
	for n := 1; n <= DemoToilets; n++ {
		out = append(out, NewToilet(seed, DemoToiletID(n), DemoToiletClass(n)))
	}
	for n := 1; n <= DemoSweepers; n++ {
		out = append(out, NewSweeper(seed, DemoSweeperID(n), DemoSweeperPath(n)))
	}
	return out
}
