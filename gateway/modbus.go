package gateway

import (
	"errors"
	"fmt"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/fleet"
)

// ModbusConfig parses the modbus section of cfg and checks that each polled
// device is registered under devices: with the same kind and transport
// modbus. Every problem is reported at once, as fleet.Problems.
func ModbusConfig(cfg *fleet.Config) (*modbus.Config, error) {
	mc, err := modbus.ParseConfig(cfg.File, &cfg.Modbus)
	var ps fleet.Problems
	if err != nil {
		if !errors.As(err, &ps) {
			return nil, err
		}
	}
	if mc != nil {
		reg := fleet.NewRegistry(cfg.Devices)
		for i, d := range mc.Devices {
			field := fmt.Sprintf("modbus.devices[%d].id", i)
			dev, ok := reg.Device(d.ID)
			switch {
			case d.ID == "":
			case !ok:
				ps.Add(cfg.File, d.Line, field, "%q is not registered under devices: (add it with kind %s and transport: modbus)", d.ID, d.Kind)
			case dev.Kind != d.Kind:
				ps.Add(cfg.File, d.Line, field, "%q is registered as a %s, but its register map makes %s readings", d.ID, dev.Kind, d.Kind)
			case dev.Transport != "modbus":
				ps.Add(cfg.File, d.Line, field, "%q is polled over Modbus: set transport: modbus on its entry under devices:", d.ID)
			}
		}
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return mc, nil
}
