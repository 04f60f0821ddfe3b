// Package telemetry owns the reading model, the payload codecs, validation,
// the ingest pipeline and the path to InfluxDB.
package telemetry

import (
	"time"
)

// Device kinds known to the gateway. They are also the InfluxDB measurement
// names of their readings.
const (
	KindBin     = "bin"
	KindTruck   = "truck"
	KindToilet  = "toilet"
	KindSweeper = "sweeper"
	// KindWeighbridge is a weighbridge at a plant, polled over Modbus.
	KindWeighbridge = "weighbridge"
)

// MeasurementEvent is the measurement that device events are written to.
const MeasurementEvent = "event"

// FieldType is the type of a reading's field value.
type FieldType uint8

// Field types, matching InfluxDB's field types.
const (
	Float FieldType = iota + 1
	Int
	Bool
	String
)

// Field is one named value of a reading. Numbers, integers and booleans are
// kept in Num (integers exactly up to 2^53, booleans as 0 or 1); strings in Str.
type Field struct {
	Name string
	Type FieldType
	Num  float64
	Str  string
}

// Reading is one timestamped record from one device: a telemetry sample
// (Event empty) or an event (Event names it, for example "pickup").
// Tags other than Device are filled by the pipeline from the fleet registry.
type Reading struct {
	Device string
	Kind   string
	Time   time.Time
	Event  string
	Fields []Field

	District   string
	Contractor string
	Category   string
	Site       string
}

// Measurement is the InfluxDB measurement the reading is written to.
func (r *Reading) Measurement() string {
	if r.Event != "" {
		return MeasurementEvent
	}
	return r.Kind
}

// Get returns the field called name.
func (r *Reading) Get(name string) (Field, bool) {
	for _, f := range r.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Num returns the numeric value of a float, integer or boolean field.
func (r *Reading) Num(name string) (float64, bool) {
	f, ok := r.Get(name)
	if !ok || f.Type == String {
		return 0, false
	}
	return f.Num, true
}

// SetFloat appends or replaces a float field.
func (r *Reading) SetFloat(name string, v float64) { r.set(Field{Name: name, Type: Float, Num: v}) }

// SetInt appends or replaces an integer field.
func (r *Reading) SetInt(name string, v int64) { r.set(Field{Name: name, Type: Int, Num: float64(v)}) }

// SetBool appends or replaces a boolean field.
func (r *Reading) SetBool(name string, v bool) {
	n := 0.0
	if v {
		n = 1
	}
	r.set(Field{Name: name, Type: Bool, Num: n})
}

// SetString appends or replaces a string field.
func (r *Reading) SetString(name, v string) { r.set(Field{Name: name, Type: String, Str: v}) }

func (r *Reading) set(f Field) {
	for i := range r.Fields {
		if r.Fields[i].Name == f.Name {
			r.Fields[i] = f
			return
		}
	}
	r.Fields = append(r.Fields, f)
}
