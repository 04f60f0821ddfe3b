package modbus_test

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/drivers/modbus"
)

func ExampleParseConfig() {
	const text = `
modbus:
  devices:
    - id: toilet-m01
      address: 127.0.0.1:5020
      profile: toilet_controller
    - id: bin-c07
      kind: bin
      address: 127.0.0.1:5021
      registers:
        - {field: fill_pct, function: input, address: 0, type: UINT16, scale: 0.1}
        - {field: weight_kg, function: input, address: 1, type: FLOAT32, byte_order: CDAB}
`
	var doc struct {
		Modbus yaml.Node `yaml:"modbus"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		panic(err)
	}
	_, err := modbus.ParseConfig("sanigate.yaml", &doc.Modbus)
	fmt.Println(err)
	// Output:
	// 1 configuration problem(s):
	//   sanigate.yaml:12: modbus.devices[1].registers[1].type: unknown type "FLOAT32" (use INT16, UINT16, INT32, UINT32, INT64, UINT64, FLOAT32-IEEE, FLOAT64-IEEE, BIT or STRING)
}
