package telemetry

import "sort"

// fieldSpec describes one field a device kind may report: its type and the
// physically possible range of its value. Values outside the range are refused:
// a bin cannot be 130 % full and a toilet cannot hold -2 people.
type fieldSpec struct {
	typ      FieldType
	min, max float64
}

func num(min, max float64) fieldSpec  { return fieldSpec{typ: Float, min: min, max: max} }
func ints(min, max float64) fieldSpec { return fieldSpec{typ: Int, min: min, max: max} }

var boolean = fieldSpec{typ: Bool, min: 0, max: 1}
var text = fieldSpec{typ: String}

// position fields shared by every kind that moves.
var (
	lat = num(-90, 90)
	lon = num(-180, 180)
)

// schemas lists the telemetry fields of each kind, with units in the names
// (docs/domain.md). The ranges are what the sensors can physically report.
var schemas = map[string]map[string]fieldSpec{
	KindBin: {
		"fill_pct":          num(0, 100),
		"weight_kg":         num(-50, 2000), // load cells drift a little below zero when empty
		"temp_c":            num(-40, 200),
		"tilt_deg":          num(0, 180),
		"lid_open":          boolean,
		"battery_pct":       num(0, 100),
		"contamination_pct": num(0, 100),
		"compactions":       ints(0, 1e12), // solar compactor bins (Modbus)
		"lat":               lat,
		"lon":               lon,
	},
	KindTruck: {
		"lat":         lat,
		"lon":         lon,
		"speed_kmh":   num(0, 200),
		"heading_deg": num(0, 360),
		"hdop":        num(0, 100),
		"load_kg":     num(-500, 60000), // on-board scales drift a little below zero when empty
		"ignition":    boolean,
		"tipper":      boolean,
		"fuel_pct":    num(0, 100),
	},
	KindToilet: {
		"nh3_mgm3":        num(0, 100),
		"h2s_mgm3":        num(0, 100),
		"temp_c":          num(-40, 70),
		"humidity_pct":    num(0, 100),
		"stalls_occupied": ints(0, 200),
		"people_in":       ints(0, 1e12),
		"water_l":         num(0, 1e12),
		"power_kwh":       num(0, 1e12),
		"paper_pct":       num(0, 100),
		"soap_pct":        num(0, 100),
		"fault_code":      ints(0, 65535),
	},
	KindWeighbridge: {},
	KindSweeper: {
		"lat":         lat,
		"lon":         lon,
		"speed_kmh":   num(0, 120),
		"heading_deg": num(0, 360),
		"hdop":        num(0, 100),
		"brush_on":    boolean,
		"vacuum_on":   boolean,
		"water_pct":   num(0, 100),
	},
}

// eventSchemas lists the events of each kind and the fields they may carry.
var eventSchemas = map[string]map[string]map[string]fieldSpec{
	KindBin: {
		"lid_open":   {"fill_pct": num(0, 100)},
		"fire_alarm": {"temp_c": num(-40, 200)},
		"emptied":    {"fill_pct": num(0, 100), "weight_kg": num(0, 2000)},
	},
	KindTruck: {
		"pickup":       {"bin": text, "lat": lat, "lon": lon, "load_kg": num(-500, 60000)},
		"unload_start": {"lat": lat, "lon": lon, "load_kg": num(-500, 60000)},
		"unload_end":   {"lat": lat, "lon": lon, "load_kg": num(-500, 60000)},
	},
	KindToilet: {
		"help_button": {"stall": ints(0, 200)},
		"door_forced": {"door": text},
	},
	KindSweeper: {},
	// A weighbridge at a plant reports each completed weighing (Modbus).
	KindWeighbridge: {
		"weighing": {"weighing_seq": num(0, 1e12), "truck_id": text, "gross_kg": num(-1000, 100000),
			"tare_kg": num(-1000, 100000), "net_kg": num(-100000, 100000), "stable": boolean},
	},
}

// KnownField reports whether kind reports a telemetry field called name.
func KnownField(kind, name string) bool {
	_, ok := schemas[kind][name]
	return ok
}

// FieldTypeOf returns the type of field name in a kind's readings, or in its
// event's when event is set, and false when they have no such field. Drivers
// use it to check their register maps when the configuration is loaded.
func FieldTypeOf(kind, event, name string) (FieldType, bool) {
	schema := schemas[kind]
	if event != "" {
		schema = eventSchemas[kind][event]
	}
	spec, ok := schema[name]
	return spec.typ, ok
}

// FieldNames lists the fields of a kind's readings, or of its event's, sorted.
func FieldNames(kind, event string) []string {
	schema := schemas[kind]
	if event != "" {
		schema = eventSchemas[kind][event]
	}
	names := make([]string, 0, len(schema))
	for n := range schema {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
