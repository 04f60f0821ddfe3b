package simulators

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// DemoConfig renders the demo city's sanigate.yaml, with a bcrypt hash of each
// device's demo password at the given cost.
func DemoConfig(cost int) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(demoConfigHead)
	if err := writeDemoDevices(&b, cost); err != nil {
		return nil, err
	}
	b.WriteString(demoModbusDevices)
	b.WriteString(demoCases())
	return b.Bytes(), nil
}

// demoConfigHead is the demo configuration up to its list of devices.
const demoConfigHead = `# The demo city of sanigate: 200 bins, 10 trucks, 20 toilets and 8 sweepers
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
`

// demoModbusDevices is the field equipment polled over Modbus: toilet
// controllers, a weighbridge at the kitchen-waste plant and solar compactor
// bins ('sanisim run' serves their simulators on these addresses).
const demoModbusDevices = `  - {id: toilet-m01, kind: toilet, class: 2, contractor: greenclean, lat: 39.931, lon: 116.402, transport: modbus}
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
`

// writeDemoDevices writes the demo's MQTT devices, bins, trucks, toilets and
// sweepers, each with a bcrypt hash of its demo password at cost.
func writeDemoDevices(b *bytes.Buffer, cost int) error {
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
			return err
		}
		p := DemoBinPosition(n)
		fmt.Fprintf(b, "  - {id: %s, kind: bin, category: %s, contractor: %s, lat: %.6f, lon: %.6f, password_hash: %q}\n",
			id, DemoCategory(n), contractor(n), p.Lat, p.Lon, h)
	}
	for n := 1; n <= DemoTrucks; n++ {
		id := DemoTruckID(n)
		h, err := hash(id)
		if err != nil {
			return err
		}
		fmt.Fprintf(b, "  - {id: %s, kind: truck, category: %s, contractor: %s, capacity_kg: 8000, password_hash: %q}\n",
			id, DemoTruckCategory(n), contractor(n), h)
	}
	for n := 1; n <= DemoToilets; n++ {
		id := DemoToiletID(n)
		h, err := hash(id)
		if err != nil {
			return err
		}
		p := DemoToiletPosition(n)
		fmt.Fprintf(b, "  - {id: %s, kind: toilet, class: %d, contractor: %s, lat: %.6f, lon: %.6f, password_hash: %q}\n",
			id, DemoToiletClass(n), contractor(n), p.Lat, p.Lon, h)
	}
	for n := 1; n <= DemoSweepers; n++ {
		id := DemoSweeperID(n)
		h, err := hash(id)
		if err != nil {
			return err
		}
		fmt.Fprintf(b, "  - {id: %s, kind: sweeper, contractor: %s, password_hash: %q}\n",
			id, sweeperContractor(n), h)
	}
	return nil
}

// DemoCityToken is the demo's API token for the city office (role city).
// Demo only: real tokens are random and only their hashes are configured.
const DemoCityToken = "demo-city-office-token"

func demoTokenHash() string {
	sum := sha256.Sum256([]byte(DemoCityToken))
	return hex.EncodeToString(sum[:])
}

// demoCases dispatches the demo city's cases: truck violations to each
// district's enforcement bureau, bins to the contractor, sweeping to the
// other contractor, toilets to the toilet operator; the token's hash is
// sha256 of DemoCityToken.
func demoCases() string {
	var b strings.Builder
	b.WriteString(`cases:
  store: {driver: sqlite, path: ../../.run/cases.db}
  units:
    - {id: city-office, name: 城管委 City administration office}
    - {id: enforcement-north, name: 北苑区城管执法队 North enforcement bureau, mqtt_topic: sanigate/v1/devices/term-north/cmd, escalation: city-office}
    - {id: enforcement-central, name: 中和区城管执法队 Central enforcement bureau, mqtt_topic: sanigate/v1/devices/term-central/cmd, escalation: city-office}
    - {id: enforcement-south, name: 南湖区城管执法队 South enforcement bureau, mqtt_topic: sanigate/v1/devices/term-south/cmd, escalation: city-office}
    - {id: greenclean, name: 绿洁环卫 Greenclean sanitation, contractor: greenclean, escalation: city-office}
    - {id: citybright, name: 城亮保洁 Citybright cleaning, contractor: citybright, escalation: city-office}
    - {id: toilet-operator, name: 公厕管理所 Public toilet operator, escalation: city-office}
  dispatch:
    default_unit: city-office
    escalation_unit: city-office
    rules:
`)
	for _, t := range []string{"illegal_dumping", "spillage", "overload", "tracking_gap", "unaccounted_load"} {
		for _, d := range []string{"north", "central", "south"} {
			fmt.Fprintf(&b, "      - {type: %s, district: %s, unit: enforcement-%s}\n", t, d, d)
		}
	}
	for _, r := range [][2]string{{"wrong_site", "city-office"}, {"mixed_collection", "city-office"},
		{"bin_overflow", "greenclean"}, {"bin_damaged", "greenclean"}, {"sorting_contamination", "greenclean"}, {"bin_fire", "greenclean"},
		{"missed_route", "citybright"}, {"sweeping_quality", "citybright"},
		{"toilet_odour", "toilet-operator"}, {"toilet_consumables", "toilet-operator"}, {"toilet_safety", "toilet-operator"},
		{"toilet_leak", "toilet-operator"}, {"toilet_cold", "toilet-operator"}} {
		fmt.Fprintf(&b, "      - {type: %s, unit: %s}\n", r[0], r[1])
	}
	fmt.Fprintf(&b, `  deadlines:
    - {type: "*", severity: critical, accept: 30m, close: 4h, working_time: false}
    - {type: "*", severity: major, accept: 2h, close: 16h, working_time: true}
    - {type: "*", severity: minor, accept: 4h, close: 24h, working_time: true}
  tokens:
    - {name: city-office-demo, role: city, token_hash: "sha256:%s"}
`, demoTokenHash())
	return b.String()
}
