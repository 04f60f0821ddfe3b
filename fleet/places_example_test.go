package fleet_test

import (
	"fmt"
	"path/filepath"

	"github.com/sanigate/sanigate/fleet"
)

func ExampleLoadPlaces() {
	dir := filepath.Join("..", "examples", "demo")
	places, err := fleet.LoadPlaces(fleet.LoadOptions{},
		filepath.Join(dir, "districts.geojson"),
		filepath.Join(dir, "sites.geojson"),
		filepath.Join(dir, "sweeping_routes.geojson"),
		filepath.Join(dir, "collection_routes.geojson"),
	)
	if err != nil {
		fmt.Println(err) // every problem, one per line, with file and line
		return
	}
	loc := places.Locate(39.862, 116.313) // lat, lon
	fmt.Println(loc.District, loc.Grid, loc.Sites)
	site, _ := places.Site(loc.Sites[0])
	fmt.Println(site.Kind, site.AcceptsCategory("kitchen"), site.AcceptsCategory("other"))
	// Output:
	// south south-w [kw-plant]
	// kitchen_waste_plant true false
}
