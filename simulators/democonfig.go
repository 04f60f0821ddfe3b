package simulators

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// DemoConfig renders the demo city's sanigate.yaml, with a bcrypt hash of each
// device's demo password at the given cost.
func DemoConfig(cost int) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`# The demo city of sanigate: 200 bins, 10 trucks, 20 toilets and 8 sweepers
# in three districts. Written by 'sanisim gen-demo'; 'make run' uses it.
# Device passwords are "demo-<id>" (demo only).
city:
  name: Demo City
  timezone: Asia/Shanghai
mqtt:
  address: ":1883"
http:
  address: ":8080"
influxdb:
  url: http://127.0.0.1:8086
  bucket: sanigate
spool:
  dir: ../../.run/spool
places:
  districts: districts.geojson
  sites: sites.geojson
  sweeping_routes: sweeping_routes.geojson
  collection_routes: collection_routes.geojson
devices:
`)
	hash := func(id string) (string, error) {
		h, err := bcrypt.GenerateFromPassword([]byte(DemoPassword(id)), cost)
		return string(h), err
	}
	contractor := func(n int) string {
		if n%2 == 1 {
			return "greenclean"
		}
		return "citybright"
	}
	// Sweepers 1-4 sweep greenclean's routes, 5-8 citybright's.
	sweeperContractor := func(n int) string {
		if n <= 4 {
			return "greenclean"
		}
		return "citybright"
	}
	for n := 1; n <= DemoBins; n++ {
		id := DemoBinID(n)
		h, err := hash(id)
		if err != nil {
			return nil, err
		}
		p := DemoBinPosition(n)
		fmt.Fprintf(&b, "  - {id: %s, kind: bin, category: %s, contractor: %s, lat: %.6f, lon: %.6f, password_hash: %q}\n",
			id, DemoCategory(n), contractor(n), p.Lat, p.Lon, h)
	}
	for n := 1; n <= DemoTrucks; n++ {
		id := DemoTruckID(n)
		h, err := hash(id)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  - {id: %s, kind: truck, category: %s, contractor: %s, capacity_kg: 8000, password_hash: %q}\n",
			id, DemoTruckCategory(n), contractor(n), h)
	}
	for n := 1; n <= DemoToilets; n++ {
		id := DemoToiletID(n)
		h, err := hash(id)
		if err != nil {
			return nil, err
		}
		p := DemoToiletPosition(n)
		fmt.Fprintf(&b, "  - {id: %s, kind: toilet, class: %d, contractor: %s, lat: %.6f, lon: %.6f, password_hash: %q}\n",
			id, DemoToiletClass(n), contractor(n), p.Lat, p.Lon, h)
	}
	for n := 1; n <= DemoSweepers; n++ {
		id := DemoSweeperID(n)
		h, err := hash(id)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  - {id: %s, kind: sweeper, contractor: %s, password_hash: %q}\n",
			id, sweeperContractor(n), h)
	}
	// Field equipment polled over Modbus: toilet controllers, a weighbridge at
	// the kitchen-waste plant and solar compactor bins ('sanisim run' serves
	// their simulators on these addresses).
	b.WriteString(`  - {id: toilet-m01, kind: toilet, class: 2, contractor: greenclean, lat: 39.931, lon: 116.402, transport: modbus}
  - {id: toilet-m02, kind: toilet, class: 1, contractor: citybright, lat: 39.968, lon: 116.447, transport: modbus}
  - {id: weighbridge-01, kind: weighbridge, contractor: greenclean, lat: 39.861, lon: 116.312, transport: modbus}
  - {id: compactor-01, kind: bin, category: other, contractor: greenclean, lat: 39.912, lon: 116.356, transport: modbus}
  - {id: compactor-02, kind: bin, category: recyclable, contractor: citybright, lat: 39.957, lon: 116.389, transport: modbus}
modbus:
  devices:
    - {id: toilet-m01, kind: toilet, transport: tcp, address: "127.0.0.1:15021", unit_id: 1, poll_interval: 10s, timeout: 2s, profile: toilet_controller}
    - {id: toilet-m02, kind: toilet, transport: rtu_over_tcp, address: "127.0.0.1:15022", unit_id: 1, poll_interval: 10s, timeout: 2s, profile: toilet_controller}
    - {id: weighbridge-01, kind: weighbridge, transport: tcp, address: "127.0.0.1:15023", unit_id: 1, poll_interval: 5s, timeout: 2s, profile: weighbridge, site: kw-plant}
    - {id: compactor-01, kind: bin, transport: tcp, address: "127.0.0.1:15024", unit_id: 1, poll_interval: 30s, timeout: 2s, profile: compactor_bin}
    - {id: compactor-02, kind: bin, transport: tcp, address: "127.0.0.1:15025", unit_id: 1, poll_interval: 30s, timeout: 2s, profile: compactor_bin}
`)
	return b.Bytes(), nil
}
