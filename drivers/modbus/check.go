package modbus

import (
	"fmt"
	"math"
	"slices"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// checkAgainstFleet checks that each polled device is registered under
// devices: with the same kind and transport modbus, and that every register
// fills a field its readings have, with a value of the field's type: the
// mistakes that would otherwise refuse every reading of the device at run
// time (unknown_field, wrong_type).
func checkAgainstFleet(d *fleet.Decoder, mc *Config, c *fleet.Config) {
	reg := fleet.NewRegistry(c.Devices)
	for i := range mc.Devices {
		dev := &mc.Devices[i]
		field := fmt.Sprintf("modbus.devices[%d].id", i)
		known, ok := reg.Device(dev.ID)
		switch {
		case dev.ID == "":
		case !ok:
			d.Add(field, "%q is not registered under devices: (add it with kind %s and transport: modbus)", dev.ID, dev.Kind)
		case known.Kind != dev.Kind:
			d.Add(field, "%q is registered as a %s, but its register map makes %s readings", dev.ID, known.Kind, dev.Kind)
		case known.Transport != "modbus":
			d.Add(field, "%q is polled over Modbus: set transport: modbus on its entry under devices:", dev.ID)
		}
		checkFields(d.Problems, dev)
	}
}

// checkFields reports registers whose field the device's readings do not
// have, or whose decoded value cannot fill it.
func checkFields(ps *fleet.Problems, dev *Device) {
	if !slices.Contains(fleet.Kinds, dev.Kind) {
		return
	}
	what := "a " + dev.Kind
	if dev.Event != "" {
		what = fmt.Sprintf("the %s event of a %s", dev.Event, dev.Kind)
	}
	for i := range dev.Registers {
		r := &dev.Registers[i]
		if r.Field == "" || r.Function == "?" || r.Type == "?" {
			continue
		}
		want, ok := telemetry.FieldTypeOf(dev.Kind, dev.Event, r.Field)
		if !ok {
			hint := ""
			if best := fleet.Closest(r.Field, telemetry.FieldNames(dev.Kind, dev.Event)); best != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", best)
			}
			ps.Add(r.File, r.Line, r.path+".field", "%q is not a field of %s%s", r.Field, what, hint)
			continue
		}
		if msg := r.fits(want); msg != "" {
			ps.Add(r.File, r.Line, r.path+".field", "%s, but %s of %s is %s", msg, r.Field, what, typeName(want))
		}
	}
}

// fits says why the register's value cannot fill a field of type want, or
// "" when it can (as telemetry's schema check would accept it).
func (r *Register) fits(want telemetry.FieldType) string {
	got := r.produces()
	switch {
	case got == want:
		return ""
	case want == telemetry.Float && got == telemetry.Int:
		return ""
	case want == telemetry.Int && got == telemetry.Float && r.Type != Float32 && r.Type != Float64:
		if r.Scale == math.Trunc(r.Scale) && r.Offset == math.Trunc(r.Offset) {
			return ""
		}
		return fmt.Sprintf("scale %g and offset %g make fractions", r.Scale, r.Offset)
	case want == telemetry.Int && got == telemetry.Float:
		return "" // a float register holding whole numbers; others are refused at run time
	}
	if r.Function.Bits() {
		return fmt.Sprintf("a %s gives true or false", r.Function)
	}
	return fmt.Sprintf("a %s register gives %s", r.Type, typeName(got))
}

// produces is the type of the field the register's value fills.
func (r *Register) produces() telemetry.FieldType {
	switch {
	case r.Function.Bits() || r.Type == Bit:
		return telemetry.Bool
	case r.Type == String:
		return telemetry.String
	case r.Type == Float32 || r.Type == Float64 || r.scaled():
		return telemetry.Float
	}
	return telemetry.Int
}

func typeName(t telemetry.FieldType) string {
	switch t {
	case telemetry.Bool:
		return "true or false"
	case telemetry.String:
		return "text"
	case telemetry.Int:
		return "a whole number"
	}
	return "a number"
}
