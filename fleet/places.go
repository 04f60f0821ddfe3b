package fleet

import (
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
	"github.com/tidwall/rtree"
)

// SiteKinds are the kinds of site (docs/domain.md); a farm is a forbidden
// destination for waste.
var SiteKinds = []string{
	"kitchen_waste_plant", "transfer_station", "landfill", "incinerator",
	"recycling_centre", "hazardous_facility", "depot", "farm",
}

// District is a district (区) of the city: a polygon or multipolygon with holes.
type District struct {
	ID, Name string
	Area     orb.MultiPolygon // [lon, lat]
}

// GridCell is a management grid cell (网格) within a district.
type GridCell struct {
	ID, Name, District string
	Area               orb.MultiPolygon
}

// Site is a place a truck may (or must not) unload at: a polygon, or a circle
// around Center when RadiusM > 0.
type Site struct {
	ID, Name, Kind string
	// Accepts lists the waste categories the site may receive.
	Accepts []string
	Area    orb.MultiPolygon // nil for a circle
	Center  orb.Point        // [lon, lat], for a circle
	RadiusM float64
}

// AcceptsCategory reports whether the site may receive waste of category c.
func (s *Site) AcceptsCategory(c string) bool {
	for _, a := range s.Accepts {
		if a == c {
			return true
		}
	}
	return false
}

// Location is where a position falls: its district and grid cell ("" when
// outside all), and the sites that contain it, in file order.
type Location struct {
	District string
	Grid     string
	Sites    []string
}

// Places is the city's map: districts, grid cells, sites and routes, with a
// spatial index. It is read-only once loaded and safe for concurrent use.
type Places struct {
	Districts        []District
	Grids            []GridCell
	Sites            []Site
	SweepingRoutes   []SweepingRoute
	CollectionRoutes []CollectionRoute

	districtIdx, gridIdx, siteIdx rtree.RTreeGN[float64, int32] // value: index into parts
	districtParts, gridParts      []part
	siteParts                     []part

	byID struct {
		districts, grids, sites, sweeping, collection map[string]int
	}
}

// part is one polygon of a district, cell or site (or a site's circle), the
// unit the index holds: a multipolygon's parts have their own small boxes.
type part struct {
	owner   int32 // index into Districts, Grids or Sites
	poly    orb.Polygon
	center  orb.Point // circle
	radiusM float64
}

func (pt *part) contains(p orb.Point) bool {
	if pt.radiusM > 0 {
		return pointDistM(pt.center, p) <= pt.radiusM
	}
	return planar.PolygonContains(pt.poly, p)
}

// index builds the spatial index and the id maps. It is called once by the
// loader, after validation.
func (p *Places) index() {
	p.byID.districts = map[string]int{}
	p.byID.grids = map[string]int{}
	p.byID.sites = map[string]int{}
	p.byID.sweeping = map[string]int{}
	p.byID.collection = map[string]int{}
	addPolys := func(tr *rtree.RTreeGN[float64, int32], parts *[]part, owner int, mp orb.MultiPolygon) {
		for _, poly := range mp {
			if len(poly) == 0 {
				continue
			}
			b := poly[0].Bound()
			*parts = append(*parts, part{owner: int32(owner), poly: poly})
			tr.Insert([2]float64{b.Min[0], b.Min[1]}, [2]float64{b.Max[0], b.Max[1]}, int32(len(*parts)-1))
		}
	}
	for i, d := range p.Districts {
		p.byID.districts[d.ID] = i
		addPolys(&p.districtIdx, &p.districtParts, i, d.Area)
	}
	for i, g := range p.Grids {
		p.byID.grids[g.ID] = i
		addPolys(&p.gridIdx, &p.gridParts, i, g.Area)
	}
	for i, s := range p.Sites {
		p.byID.sites[s.ID] = i
		if s.RadiusM > 0 {
			kx, ky := metresPerDegree(s.Center[1])
			dx, dy := s.RadiusM/kx*1.001, s.RadiusM/ky*1.001
			p.siteParts = append(p.siteParts, part{owner: int32(i), center: s.Center, radiusM: s.RadiusM})
			p.siteIdx.Insert([2]float64{s.Center[0] - dx, s.Center[1] - dy}, [2]float64{s.Center[0] + dx, s.Center[1] + dy}, int32(len(p.siteParts)-1))
			continue
		}
		addPolys(&p.siteIdx, &p.siteParts, i, s.Area)
	}
	for i, r := range p.SweepingRoutes {
		p.byID.sweeping[r.ID] = i
	}
	for i, r := range p.CollectionRoutes {
		p.byID.collection[r.ID] = i
	}
}

// Locate places a WGS-84 position. A point on the border shared by two
// districts (or cells) goes to the one listed first in its file, so every
// position has exactly one district; a point in a hole belongs to whatever
// fills the hole, if anything. Sites may overlap, so all that contain the
// point are listed; Sites is nil when there are none.
func (p *Places) Locate(lat, lon float64) Location {
	pt := orb.Point{lon, lat}
	var loc Location
	if d := firstContaining(&p.districtIdx, p.districtParts, pt); d >= 0 {
		loc.District = p.Districts[d].ID
	}
	if g := firstContaining(&p.gridIdx, p.gridParts, pt); g >= 0 {
		loc.Grid = p.Grids[g].ID
	}
	if p.siteIdx.Len() > 0 {
		key := [2]float64{lon, lat}
		var found [8]int32
		hits := found[:0]
		p.siteIdx.Search(key, key, func(_, _ [2]float64, i int32) bool {
			if pp := &p.siteParts[i]; pp.contains(pt) {
				hits = appendOwner(hits, pp.owner)
			}
			return true
		})
		if len(hits) > 0 {
			sortInt32(hits)
			loc.Sites = make([]string, len(hits))
			for i, h := range hits {
				loc.Sites[i] = p.Sites[h].ID
			}
		}
	}
	return loc
}

func firstContaining(tr *rtree.RTreeGN[float64, int32], parts []part, pt orb.Point) int {
	best := int32(math.MaxInt32)
	key := [2]float64{pt[0], pt[1]}
	tr.Search(key, key, func(_, _ [2]float64, i int32) bool {
		if pp := &parts[i]; pp.owner < best && pp.contains(pt) {
			best = pp.owner
		}
		return true
	})
	if best == math.MaxInt32 {
		return -1
	}
	return int(best)
}

func appendOwner(list []int32, o int32) []int32 {
	for _, x := range list {
		if x == o {
			return list
		}
	}
	return append(list, o)
}

func sortInt32(a []int32) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

// District returns the district with the given id.
func (p *Places) District(id string) (*District, bool) {
	i, ok := p.byID.districts[id]
	if !ok {
		return nil, false
	}
	return &p.Districts[i], true
}

// Grid returns the grid cell with the given id.
func (p *Places) Grid(id string) (*GridCell, bool) {
	i, ok := p.byID.grids[id]
	if !ok {
		return nil, false
	}
	return &p.Grids[i], true
}

// Site returns the site with the given id.
func (p *Places) Site(id string) (*Site, bool) {
	i, ok := p.byID.sites[id]
	if !ok {
		return nil, false
	}
	return &p.Sites[i], true
}

// SweepingRoute returns the sweeping route with the given id.
func (p *Places) SweepingRoute(id string) (*SweepingRoute, bool) {
	i, ok := p.byID.sweeping[id]
	if !ok {
		return nil, false
	}
	return &p.SweepingRoutes[i], true
}

// CollectionRoute returns the collection route with the given id.
func (p *Places) CollectionRoute(id string) (*CollectionRoute, bool) {
	i, ok := p.byID.collection[id]
	if !ok {
		return nil, false
	}
	return &p.CollectionRoutes[i], true
}

// RoutesOfSweeper returns the sweeping routes the device is assigned to.
func (p *Places) RoutesOfSweeper(device string) []*SweepingRoute {
	var out []*SweepingRoute
	for i := range p.SweepingRoutes {
		for _, s := range p.SweepingRoutes[i].Sweepers {
			if s == device {
				out = append(out, &p.SweepingRoutes[i])
				break
			}
		}
	}
	return out
}

// RoutesOfTruck returns the collection routes the truck drives.
func (p *Places) RoutesOfTruck(device string) []*CollectionRoute {
	var out []*CollectionRoute
	for i := range p.CollectionRoutes {
		if p.CollectionRoutes[i].Truck == device {
			out = append(out, &p.CollectionRoutes[i])
		}
	}
	return out
}
