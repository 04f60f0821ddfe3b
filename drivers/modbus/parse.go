package modbus

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/fleet"
)

// sectionSpec, deviceSpec and registerSpec are the modbus section as
// written; fleet's decoder fills them (refusing unknown settings and values
// of the wrong type) and device and register turn them into a Device and its
// Registers, checking what a decoder cannot.
type sectionSpec struct {
	Devices []deviceSpec `yaml:"devices"`
}

type deviceSpec struct {
	ID                  string         `yaml:"id"`
	Kind                string         `yaml:"kind"`
	Event               string         `yaml:"event"`
	Site                string         `yaml:"site"`
	EmitOnChange        string         `yaml:"emit_on_change"`
	Transport           string         `yaml:"transport"`
	Address             string         `yaml:"address"`
	BaudRate            int64          `yaml:"baud_rate"`
	DataBits            int64          `yaml:"data_bits"`
	Parity              string         `yaml:"parity"`
	StopBits            int64          `yaml:"stop_bits"`
	UnitID              int64          `yaml:"unit_id"`
	PollInterval        time.Duration  `yaml:"poll_interval"`
	Timeout             time.Duration  `yaml:"timeout"`
	Profile             string         `yaml:"profile"`
	Registers           []registerSpec `yaml:"registers"`
	MaxGap              int64          `yaml:"max_gap"`
	MaxRequestRegisters int64          `yaml:"max_request_registers"`
	MaxRequestBits      int64          `yaml:"max_request_bits"`
	BusyRetries         int64          `yaml:"busy_retries"`
	BusyWait            time.Duration  `yaml:"busy_wait"`
	BackoffMin          time.Duration  `yaml:"backoff_min"`
	BackoffMax          time.Duration  `yaml:"backoff_max"`
}

type registerSpec struct {
	Field     string  `yaml:"field"`
	Function  string  `yaml:"function"`
	Address   int64   `yaml:"address"`
	Type      string  `yaml:"type"`
	ByteOrder string  `yaml:"byte_order"`
	Scale     float64 `yaml:"scale"`
	Offset    float64 `yaml:"offset"`
	Length    int64   `yaml:"length"`
	Bit       int64   `yaml:"bit"`
}

type profileSpec struct {
	Name         string         `yaml:"name"`
	Kind         string         `yaml:"kind"`
	Event        string         `yaml:"event"`
	EmitOnChange string         `yaml:"emit_on_change"`
	MaxGap       int64          `yaml:"max_gap"`
	Registers    []registerSpec `yaml:"registers"`
}

func init() {
	fleet.RegisterSection("modbus", func(d *fleet.Decoder, n *yaml.Node, c *fleet.Config) any {
		cfg := decodeSection(d, n)
		checkAgainstFleet(d, cfg, c)
		return cfg
	})
}

// FromConfig returns the modbus section of a configuration made by
// fleet.Parse (checked against the registered devices and their kinds'
// fields), or no devices when it has none.
func FromConfig(cfg *fleet.Config) *Config {
	if c, ok := cfg.Section("modbus").(*Config); ok {
		return c
	}
	return &Config{}
}

// ParseConfig reads the modbus section of the configuration file named file
// (node is the value of its modbus key) and checks its register maps, with
// the shipped profiles resolved. Every mistake is reported at once in a
// fleet.Problems, each with its line and field. A missing or empty section is
// no devices. The section as fleet.Parse loads it is also checked against the
// registered devices and the fields of their kinds (see FromConfig).
func ParseConfig(file string, node *yaml.Node) (*Config, error) {
	var ps fleet.Problems
	cfg := decodeSection(fleet.NewDecoder(file, &ps), node)
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func decodeSection(d *fleet.Decoder, node *yaml.Node) *Config {
	cfg := &Config{}
	node = fleet.SectionNode(node)
	if node == nil {
		return cfg
	}
	var spec sectionSpec
	d.Decode(node, &spec, "modbus")
	ids := map[string]int{}
	for i, ds := range spec.Devices {
		path := fmt.Sprintf("modbus.devices[%d]", i)
		dev := decodeDevice(d, ds, path)
		cfg.Devices = append(cfg.Devices, dev)
		if dev.ID == "" {
			continue
		}
		if first, dup := ids[dev.ID]; dup {
			d.Add(path+".id", "device %q is already defined on line %d", dev.ID, first)
			continue
		}
		ids[dev.ID] = dev.Line
	}
	return cfg
}

// setting tells whether the file sets a device's or register's key, and
// reports a whole number outside lo..hi.
type setting struct {
	d    *fleet.Decoder
	path string
}

func (s setting) p(k string) string {
	if s.path == "" {
		return k
	}
	return s.path + "." + k
}
func (s setting) has(k string) bool         { return s.d.Has(s.p(k)) }
func (s setting) ok(k string) bool          { return s.has(k) && !s.d.Failed(s.p(k)) }
func (s setting) add(k, f string, a ...any) { s.d.Add(s.p(k), f, a...) }

func (s setting) whole(k string, v, lo, hi int64) bool {
	if !s.ok(k) {
		return false
	}
	if v < lo || v > hi {
		s.add(k, "%d is not a whole number from %d to %d", v, lo, hi)
		return false
	}
	return true
}

func decodeDevice(d *fleet.Decoder, ds deviceSpec, path string) Device {
	s := setting{d, path}
	dev := Device{
		ID: ds.ID, Kind: ds.Kind, Event: ds.Event, Site: ds.Site, EmitOnChange: ds.EmitOnChange,
		Transport: TCP, Address: ds.Address, UnitID: 1, PollInterval: DefaultPollInterval, Timeout: DefaultTimeout,
		Profile:             ds.Profile,
		MaxRequestRegisters: MaxRegistersPerRequest, MaxRequestBits: MaxBitsPerRequest,
		BusyRetries: DefaultBusyRetries, BusyWait: DefaultBusyWait, BackoffMin: DefaultBackoffMin, BackoffMax: DefaultBackoffMax,
		Line: d.Line(path),
	}
	if s.ok("transport") {
		dev.Transport = Transport(ds.Transport)
		if !slices.Contains(Transports, dev.Transport) {
			s.add("transport", "unknown transport %q (use tcp, rtu or rtu_over_tcp)", ds.Transport)
		}
	}
	deviceNumbers(s, ds, &dev)
	deviceDurations(s, ds, &dev)
	checkIdentity(s, &dev)
	checkAddress(s, &dev)
	deviceSerial(s, ds, &dev)
	deviceRegisters(s, ds, &dev)
	return dev
}

func deviceNumbers(s setting, ds deviceSpec, dev *Device) {
	if s.whole("unit_id", ds.UnitID, 0, 247) {
		dev.UnitID = uint8(ds.UnitID)
	}
	if s.whole("max_gap", ds.MaxGap, 0, MaxRegistersPerRequest) {
		dev.MaxGap = int(ds.MaxGap)
	}
	if s.whole("max_request_registers", ds.MaxRequestRegisters, 1, MaxRegistersPerRequest) {
		dev.MaxRequestRegisters = int(ds.MaxRequestRegisters)
	}
	if s.whole("max_request_bits", ds.MaxRequestBits, 1, MaxBitsPerRequest) {
		dev.MaxRequestBits = int(ds.MaxRequestBits)
	}
	if s.whole("busy_retries", ds.BusyRetries, 0, 10) {
		dev.BusyRetries = int(ds.BusyRetries)
	}
}

func deviceDurations(s setting, ds deviceSpec, dev *Device) {
	for _, x := range []struct {
		k   string
		src time.Duration
		dst *time.Duration
	}{
		{"poll_interval", ds.PollInterval, &dev.PollInterval}, {"timeout", ds.Timeout, &dev.Timeout},
		{"busy_wait", ds.BusyWait, &dev.BusyWait}, {"backoff_min", ds.BackoffMin, &dev.BackoffMin},
		{"backoff_max", ds.BackoffMax, &dev.BackoffMax},
	} {
		if s.ok(x.k) {
			*x.dst = x.src
		}
	}
	if dev.PollInterval < 100*time.Millisecond {
		s.add("poll_interval", "must be at least 100ms, got %s", dev.PollInterval)
	}
	if dev.Timeout <= 0 {
		s.add("timeout", "must be positive, got %s", dev.Timeout)
	} else if dev.Timeout >= dev.PollInterval {
		s.add("timeout", "must be shorter than poll_interval (%s), got %s", dev.PollInterval, dev.Timeout)
	}
	if dev.BusyWait < 0 {
		s.add("busy_wait", "must not be negative")
	}
	if dev.BackoffMin <= 0 {
		s.add("backoff_min", "must be positive, got %s", dev.BackoffMin)
	}
	if dev.BackoffMax < dev.BackoffMin {
		s.add("backoff_max", "must be at least backoff_min (%s), got %s", dev.BackoffMin, dev.BackoffMax)
	}
}

func checkIdentity(s setting, dev *Device) {
	if dev.ID == "" {
		s.add("id", "missing: the device id its readings carry")
	} else if !deviceID.MatchString(dev.ID) {
		s.add("id", "%q is not a device id (letters, digits, . _ : -)", dev.ID)
	}
}

func checkAddress(s setting, dev *Device) {
	switch {
	case dev.Address == "":
		s.add("address", "missing: host:port, or the serial port for rtu")
	case dev.Transport == RTU:
		if strings.Contains(dev.Address, "://") {
			s.add("address", "%q is not a serial port path", dev.Address)
		}
	case slices.Contains(Transports, dev.Transport):
		host, port, err := net.SplitHostPort(dev.Address)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			s.add("address", "%q is not host:port", dev.Address)
		}
	}
}

func deviceSerial(s setting, ds deviceSpec, dev *Device) {
	serial := []string{"baud_rate", "data_bits", "parity", "stop_bits"}
	if dev.Transport != RTU {
		for _, k := range serial {
			if s.has(k) {
				s.add(k, "only a serial line (transport rtu) has this setting")
			}
		}
		return
	}
	dev.BaudRate, dev.DataBits, dev.Parity, dev.StopBits = DefaultBaudRate, 8, "N", 1
	if s.whole("baud_rate", ds.BaudRate, 300, 4_000_000) {
		dev.BaudRate = int(ds.BaudRate)
	}
	if s.whole("data_bits", ds.DataBits, 5, 8) {
		dev.DataBits = int(ds.DataBits)
	}
	if s.whole("stop_bits", ds.StopBits, 1, 2) {
		dev.StopBits = int(ds.StopBits)
	}
	if s.ok("parity") {
		switch strings.ToLower(ds.Parity) {
		case "n", "none":
			dev.Parity = "N"
		case "e", "even":
			dev.Parity = "E"
		case "o", "odd":
			dev.Parity = "O"
		default:
			s.add("parity", "unknown parity %q (use N, E or O)", ds.Parity)
		}
	}
}

// deviceRegisters resolves the profile and the inline registers.
func deviceRegisters(s setting, ds deviceSpec, dev *Device) {
	var regs []Register
	if dev.Profile != "" {
		pr, err := LoadProfile(dev.Profile)
		if err != nil {
			s.add("profile", "%v", err)
		} else {
			regs = append(regs, pr.Registers...)
			switch {
			case dev.Kind == "":
				dev.Kind = pr.Kind
			case dev.Kind != pr.Kind:
				s.add("kind", "profile %s is for kind %s, not %s", pr.Name, pr.Kind, dev.Kind)
			}
			if dev.Event == "" {
				dev.Event = pr.Event
			}
			if dev.EmitOnChange == "" {
				dev.EmitOnChange = pr.EmitOnChange
			}
			if !s.has("max_gap") {
				dev.MaxGap = pr.MaxGap
			}
		}
	}
	if dev.Kind == "" && (dev.Profile == "" || len(regs) > 0) {
		s.add("kind", "missing: the device kind (or a profile that gives it)")
	} else if dev.Kind != "" && !fieldName.MatchString(dev.Kind) {
		s.add("kind", "%q is not a kind name", dev.Kind)
	}
	// An inline register with a profile register's field replaces it, so that
	// a controller wired differently keeps the rest of its profile.
	fromProfile := len(regs)
	for j, rs := range ds.Registers {
		r := decodeRegister(s.d, rs, fmt.Sprintf("%s[%d]", s.p("registers"), j))
		if i := slices.IndexFunc(regs[:fromProfile], func(x Register) bool { return x.Field == r.Field && x.Field != "" }); i >= 0 {
			regs[i] = r
		} else {
			regs = append(regs, r)
		}
	}
	dev.Registers = regs
	if len(regs) == 0 && !s.has("profile") && !s.d.Failed(s.p("registers")) {
		s.add("registers", "missing: a profile or a list of registers")
	}
	checkRegisters(s.d.Problems, dev)
	if dev.EmitOnChange != "" && !slices.ContainsFunc(regs, func(r Register) bool { return r.Field == dev.EmitOnChange }) {
		s.add("emit_on_change", "no register fills field %q", dev.EmitOnChange)
	}
}

// decodeRegister turns one register entry into a Register.
func decodeRegister(d *fleet.Decoder, rs registerSpec, path string) Register {
	s := setting{d, path}
	r := Register{Field: rs.Field, Address: uint16(max(rs.Address, 0)), Order: ABCD, Scale: 1, Offset: rs.Offset,
		File: d.File, Line: d.Line(path), path: path}
	registerNames(s, rs, &r)
	if !s.has("address") {
		s.add("address", "missing: the register's address")
	} else {
		s.whole("address", rs.Address, 0, 65535)
	}
	if s.ok("scale") {
		if rs.Scale == 0 {
			s.add("scale", "must not be zero")
		} else {
			r.Scale = rs.Scale
		}
	}
	if r.Function.Bits() {
		if r.Type == "" {
			r.Type = Bit
		} else if r.Type != Bit && r.Type != "?" {
			s.add("type", "a %s is one bit: its type is BIT, not %s", r.Function, r.Type)
		}
		for _, k := range []string{"length", "bit", "scale", "offset", "byte_order"} {
			if s.has(k) {
				s.add(k, "a %s is one bit and takes no %s", r.Function, k)
			}
		}
		return r
	}
	registerShape(s, rs, &r)
	return r
}

func registerNames(s setting, rs registerSpec, r *Register) {
	if !s.has("field") {
		s.add("field", "missing: the reading field this register fills")
	} else if !fieldName.MatchString(r.Field) {
		s.add("field", "%q is not a field name (lower case, digits, _)", r.Field)
	}
	r.Function = Function(strings.ToLower(rs.Function))
	if !s.has("function") {
		s.add("function", "missing: coil, discrete, holding or input")
		r.Function = "?"
	} else if !slices.Contains(Functions, r.Function) {
		s.add("function", "unknown function %q (use coil, discrete, holding or input)", rs.Function)
		r.Function = "?"
	}
	if s.has("type") {
		r.Type = Type(strings.ToUpper(rs.Type))
		if !slices.Contains(Types, r.Type) {
			s.add("type", "unknown type %q (use INT16, UINT16, INT32, UINT32, INT64, UINT64, FLOAT32-IEEE, FLOAT64-IEEE, BIT or STRING)", rs.Type)
			r.Type = "?"
		}
	}
	if s.has("byte_order") {
		r.Order = ByteOrder(strings.ToUpper(rs.ByteOrder))
		if !slices.Contains(ByteOrders, r.Order) {
			s.add("byte_order", "unknown byte order %q (use ABCD, DCBA, BADC or CDAB)", rs.ByteOrder)
			r.Order = ABCD
		}
	}
}

// registerShape checks a holding or input register's type, length and bit.
func registerShape(s setting, rs registerSpec, r *Register) {
	if r.Type == "" {
		s.add("type", "missing: the data type")
		r.Type = "?"
	}
	length := int64(-1)
	if s.has("length") {
		length = 0
		if s.whole("length", rs.Length, 1, MaxRegistersPerRequest) {
			length = rs.Length
		}
	}
	switch {
	case r.Type == String:
		if length < 0 {
			s.add("length", "missing: a STRING needs its length in registers")
			length = 1
		}
		r.Length = uint16(max(length, 1))
	case r.Type.width() > 0 && length > 0 && int(length) != r.Type.width():
		s.add("length", "%s takes %d register(s), not %d", r.Type, r.Type.width(), length)
	}
	if r.Type != String {
		r.Length = uint16(max(r.Type.width(), 1))
	}
	if s.has("bit") {
		if r.Type != Bit {
			s.add("bit", "only a BIT type has a bit index")
		}
		if s.whole("bit", rs.Bit, 0, 15) {
			r.Bit = uint8(rs.Bit)
		}
	}
	if r.Type == Bit || r.Type == String {
		for _, k := range []string{"scale", "offset"} {
			if s.has(k) {
				s.add(k, "a %s value takes no %s", r.Type, k)
			}
		}
	}
	if r.Type != "?" && s.ok("address") && r.end() > 65536 {
		s.add("address", "%s at %d runs past the last address 65535", r.Type, r.Address)
	}
}
