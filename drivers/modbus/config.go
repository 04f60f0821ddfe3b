package modbus

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/fleet"
)

// Function is the Modbus object type a register is read from.
type Function string

// Functions, named as in Telegraf and the ThingsBoard gateway.
const (
	Coil     Function = "coil"     // read coils (function code 1)
	Discrete Function = "discrete" // read discrete inputs (function code 2)
	Holding  Function = "holding"  // read holding registers (function code 3)
	Input    Function = "input"    // read input registers (function code 4)
)

// Functions lists every function.
var Functions = []Function{Coil, Discrete, Holding, Input}

// Bits reports whether f reads single bits rather than 16-bit registers.
func (f Function) Bits() bool { return f == Coil || f == Discrete }

// Transport is how the gateway reaches a device.
type Transport string

// Transports.
const (
	TCP        Transport = "tcp"          // Modbus TCP (MBAP framing)
	RTU        Transport = "rtu"          // RTU framing on a serial line
	RTUOverTCP Transport = "rtu_over_tcp" // RTU framing over a TCP connection (serial servers, DTUs)
)

// Transports lists every transport.
var Transports = []Transport{TCP, RTU, RTUOverTCP}

// Protocol limits of one read request (Modbus application protocol 1.1b3,
// sections 6.1 to 6.4).
const (
	MaxRegistersPerRequest = 125
	MaxBitsPerRequest      = 2000
)

// Register maps one value of a device to one field of its readings.
type Register struct {
	Field    string    // reading field it fills, named as in DOMAIN.md
	Function Function  // object type
	Address  uint16    // zero-based protocol address
	Type     Type      // data type; BIT for coils and discrete inputs
	Order    ByteOrder // byte and word order of multi-byte values
	Scale    float64   // value = raw x Scale + Offset
	Offset   float64
	Length   uint16 // registers a STRING takes (two characters each)
	Bit      uint8  // bit index (0 = least significant) of a BIT in a holding or input register

	File string // where the register was declared, for problems
	Line int
	path string
}

// count is the number of registers, or bits, the value takes.
func (r *Register) count() int {
	if r.Function.Bits() {
		return 1
	}
	if r.Type == String {
		return int(r.Length)
	}
	return r.Type.width()
}

// end is one past the last address the value takes.
func (r *Register) end() int { return int(r.Address) + r.count() }

// Device is one polled device.
type Device struct {
	ID           string // device id its readings carry; also registered in the fleet
	Kind         string // reading kind (bin, toilet, ...), from the profile when not set
	Event        string // when set, each reading is an event of this name (a weighing)
	Site         string // site tag of its readings, for equipment fixed at a site
	EmitOnChange string // when set, a reading is emitted only when this field changed

	Transport Transport
	Address   string // host:port, or the serial device path for rtu
	BaudRate  int    // serial settings, rtu only
	DataBits  int
	Parity    string // N, E or O
	StopBits  int
	UnitID    uint8

	PollInterval time.Duration
	Timeout      time.Duration // bounds one request, including a connect

	Profile   string     // name of the shipped register map, if any
	Registers []Register // the profile's registers with inline ones added or replacing them

	MaxGap              int // unused registers (or bits) a request may span to join two values
	MaxRequestRegisters int
	MaxRequestBits      int
	BusyRetries         int           // retries of a request answered "server device busy"
	BusyWait            time.Duration // pause before each such retry
	BackoffMin          time.Duration // first pause before redialling a failed connection
	BackoffMax          time.Duration // longest pause between redials

	Line int
}

// Config is the modbus section of sanigate.yaml.
type Config struct {
	Devices []Device
}

// Defaults of device settings.
const (
	DefaultPollInterval = 10 * time.Second
	DefaultTimeout      = time.Second
	DefaultBaudRate     = 9600
	DefaultBusyRetries  = 2
	DefaultBusyWait     = 100 * time.Millisecond
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
)

var (
	fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	deviceID  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
)

var deviceKeys = []string{
	"id", "kind", "event", "site", "emit_on_change", "transport", "address", "baud_rate", "data_bits", "parity",
	"stop_bits", "unit_id", "poll_interval", "timeout", "profile", "registers", "max_gap",
	"max_request_registers", "max_request_bits", "busy_retries", "busy_wait", "backoff_min", "backoff_max",
}

var registerKeys = []string{"field", "function", "address", "type", "byte_order", "scale", "offset", "length", "bit"}

// ParseConfig reads the modbus section of the configuration file named file
// (node is the value of its modbus key) and checks it, with the shipped
// profiles resolved. Every mistake is reported at once in a fleet.Problems,
// each with its line and field. A missing or empty section is no devices.
func ParseConfig(file string, node *yaml.Node) (*Config, error) {
	var ps fleet.Problems
	cfg := &Config{}
	if node == nil {
		return cfg, nil
	}
	if node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return cfg, nil
		}
		node = node.Content[0]
	}
	if node.Kind == 0 || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return cfg, nil
	}
	w := &walker{file: file, ps: &ps}
	w.mapping(node, "modbus", []string{"devices"}, func(_ string, v *yaml.Node, path string) {
		if v.Kind != yaml.SequenceNode {
			w.add(v, path, "expected a list of devices, got %s", describe(v))
			return
		}
		for i, dn := range v.Content {
			d := w.device(dn, fmt.Sprintf("%s[%d]", path, i))
			cfg.Devices = append(cfg.Devices, d)
		}
	})
	ids := map[string]int{}
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		if d.ID == "" {
			continue
		}
		if first, dup := ids[d.ID]; dup {
			ps.Add(file, d.Line, fmt.Sprintf("modbus.devices[%d].id", i), "device %q is already defined on line %d", d.ID, first)
			continue
		}
		ids[d.ID] = d.Line
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (w *walker) device(n *yaml.Node, path string) Device {
	d := Device{
		Transport: TCP, UnitID: 1, PollInterval: DefaultPollInterval, Timeout: DefaultTimeout,
		MaxRequestRegisters: MaxRegistersPerRequest, MaxRequestBits: MaxBitsPerRequest,
		BusyRetries: DefaultBusyRetries, BusyWait: DefaultBusyWait, BackoffMin: DefaultBackoffMin, BackoffMax: DefaultBackoffMax,
		Line: n.Line,
	}
	lines := map[string]*yaml.Node{}
	var inline []Register
	serialSet := false
	w.mapping(n, path, deviceKeys, func(k string, v *yaml.Node, p string) {
		lines[k] = v
		var i int64
		switch k {
		case "id":
			w.str(v, p, &d.ID)
		case "kind":
			w.str(v, p, &d.Kind)
		case "event":
			w.str(v, p, &d.Event)
		case "site":
			w.str(v, p, &d.Site)
		case "emit_on_change":
			w.str(v, p, &d.EmitOnChange)
		case "transport":
			var s string
			w.str(v, p, &s)
			d.Transport = Transport(s)
			if s != "" && !contains(Transports, d.Transport) {
				w.add(v, p, "unknown transport %q (use tcp, rtu or rtu_over_tcp)", s)
			}
		case "address":
			w.str(v, p, &d.Address)
		case "baud_rate":
			serialSet = true
			if w.integer(v, p, 300, 4_000_000, &i) {
				d.BaudRate = int(i)
			}
		case "data_bits":
			serialSet = true
			if w.integer(v, p, 5, 8, &i) {
				d.DataBits = int(i)
			}
		case "stop_bits":
			serialSet = true
			if w.integer(v, p, 1, 2, &i) {
				d.StopBits = int(i)
			}
		case "parity":
			serialSet = true
			var s string
			w.str(v, p, &s)
			switch strings.ToLower(s) {
			case "n", "none":
				d.Parity = "N"
			case "e", "even":
				d.Parity = "E"
			case "o", "odd":
				d.Parity = "O"
			default:
				w.add(v, p, "unknown parity %q (use N, E or O)", s)
			}
		case "unit_id":
			if w.integer(v, p, 0, 247, &i) {
				d.UnitID = uint8(i)
			}
		case "poll_interval":
			w.duration(v, p, &d.PollInterval)
		case "timeout":
			w.duration(v, p, &d.Timeout)
		case "profile":
			w.str(v, p, &d.Profile)
		case "registers":
			if v.Kind != yaml.SequenceNode {
				w.add(v, p, "expected a list of registers, got %s", describe(v))
				return
			}
			for j, rn := range v.Content {
				inline = append(inline, w.register(rn, fmt.Sprintf("%s[%d]", p, j)))
			}
		case "max_gap":
			if w.integer(v, p, 0, MaxRegistersPerRequest, &i) {
				d.MaxGap = int(i)
			}
		case "max_request_registers":
			if w.integer(v, p, 1, MaxRegistersPerRequest, &i) {
				d.MaxRequestRegisters = int(i)
			}
		case "max_request_bits":
			if w.integer(v, p, 1, MaxBitsPerRequest, &i) {
				d.MaxRequestBits = int(i)
			}
		case "busy_retries":
			if w.integer(v, p, 0, 10, &i) {
				d.BusyRetries = int(i)
			}
		case "busy_wait":
			w.duration(v, p, &d.BusyWait)
		case "backoff_min":
			w.duration(v, p, &d.BackoffMin)
		case "backoff_max":
			w.duration(v, p, &d.BackoffMax)
		}
	})
	at := func(k string) *yaml.Node {
		if v := lines[k]; v != nil {
			return v
		}
		return n
	}
	p := func(k string) string { return path + "." + k }

	if d.ID == "" {
		w.add(at("id"), p("id"), "missing: the device id its readings carry")
	} else if !deviceID.MatchString(d.ID) {
		w.add(at("id"), p("id"), "%q is not a device id (letters, digits, . _ : -)", d.ID)
	}
	switch {
	case d.Address == "":
		w.add(at("address"), p("address"), "missing: host:port, or the serial port for rtu")
	case d.Transport == RTU:
		if strings.Contains(d.Address, "://") {
			w.add(at("address"), p("address"), "%q is not a serial port path", d.Address)
		}
	case contains(Transports, d.Transport):
		host, port, err := net.SplitHostPort(d.Address)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			w.add(at("address"), p("address"), "%q is not host:port", d.Address)
		}
	}
	if d.Transport == RTU {
		if d.BaudRate == 0 {
			d.BaudRate = DefaultBaudRate
		}
		if d.DataBits == 0 {
			d.DataBits = 8
		}
		if d.Parity == "" {
			d.Parity = "N"
		}
		if d.StopBits == 0 {
			d.StopBits = 1
		}
	} else if serialSet {
		for _, k := range []string{"baud_rate", "data_bits", "parity", "stop_bits"} {
			if lines[k] != nil {
				w.add(lines[k], p(k), "only a serial line (transport rtu) has this setting")
			}
		}
	}
	if d.PollInterval < 100*time.Millisecond {
		w.add(at("poll_interval"), p("poll_interval"), "must be at least 100ms, got %s", d.PollInterval)
	}
	if d.Timeout <= 0 {
		w.add(at("timeout"), p("timeout"), "must be positive, got %s", d.Timeout)
	} else if d.Timeout >= d.PollInterval {
		w.add(at("timeout"), p("timeout"), "must be shorter than poll_interval (%s), got %s", d.PollInterval, d.Timeout)
	}
	if d.BusyWait < 0 {
		w.add(at("busy_wait"), p("busy_wait"), "must not be negative")
	}
	if d.BackoffMin <= 0 {
		w.add(at("backoff_min"), p("backoff_min"), "must be positive, got %s", d.BackoffMin)
	}
	if d.BackoffMax < d.BackoffMin {
		w.add(at("backoff_max"), p("backoff_max"), "must be at least backoff_min (%s), got %s", d.BackoffMin, d.BackoffMax)
	}

	var regs []Register
	if d.Profile != "" {
		pr, err := LoadProfile(d.Profile)
		if err != nil {
			w.add(at("profile"), p("profile"), "%v", err)
		} else {
			regs = append(regs, pr.Registers...)
			switch {
			case d.Kind == "":
				d.Kind = pr.Kind
			case d.Kind != pr.Kind:
				w.add(at("kind"), p("kind"), "profile %s is for kind %s, not %s", pr.Name, pr.Kind, d.Kind)
			}
			if d.Event == "" {
				d.Event = pr.Event
			}
			if d.EmitOnChange == "" {
				d.EmitOnChange = pr.EmitOnChange
			}
			if lines["max_gap"] == nil {
				d.MaxGap = pr.MaxGap
			}
		}
	}
	if d.Kind == "" && (d.Profile == "" || len(regs) > 0) {
		w.add(at("kind"), p("kind"), "missing: the device kind (or a profile that gives it)")
	} else if d.Kind != "" && !fieldName.MatchString(d.Kind) {
		w.add(at("kind"), p("kind"), "%q is not a kind name", d.Kind)
	}
	// An inline register with a profile register's field replaces it, so that
	// a controller wired differently keeps the rest of its profile.
	fromProfile := len(regs)
	for _, r := range inline {
		if i := slices.IndexFunc(regs[:fromProfile], func(x Register) bool { return x.Field == r.Field && x.Field != "" }); i >= 0 {
			regs[i] = r
		} else {
			regs = append(regs, r)
		}
	}
	d.Registers = regs
	if len(regs) == 0 && lines["profile"] == nil {
		w.add(at("registers"), p("registers"), "missing: a profile or a list of registers")
	}
	w.checkRegisters(&d)
	if d.EmitOnChange != "" && !slices.ContainsFunc(regs, func(r Register) bool { return r.Field == d.EmitOnChange }) {
		w.add(at("emit_on_change"), p("emit_on_change"), "no register fills field %q", d.EmitOnChange)
	}
	return d
}

// register reads one register entry.
func (w *walker) register(n *yaml.Node, path string) Register {
	r := Register{Order: ABCD, Scale: 1, File: w.file, Line: n.Line, path: path}
	lines := map[string]*yaml.Node{}
	var length, bit int64 = -1, -1
	w.mapping(n, path, registerKeys, func(k string, v *yaml.Node, p string) {
		lines[k] = v
		var i int64
		switch k {
		case "field":
			w.str(v, p, &r.Field)
		case "function":
			var s string
			w.str(v, p, &s)
			r.Function = Function(strings.ToLower(s))
			if !contains(Functions, r.Function) {
				w.add(v, p, "unknown function %q (use coil, discrete, holding or input)", s)
				r.Function = "?"
			}
		case "address":
			if w.integer(v, p, 0, 65535, &i) {
				r.Address = uint16(i)
			}
		case "type":
			var s string
			w.str(v, p, &s)
			r.Type = Type(strings.ToUpper(s))
			if !contains(Types, r.Type) {
				w.add(v, p, "unknown type %q (use INT16, UINT16, INT32, UINT32, INT64, UINT64, FLOAT32-IEEE, FLOAT64-IEEE, BIT or STRING)", s)
				r.Type = "?"
			}
		case "byte_order":
			var s string
			w.str(v, p, &s)
			r.Order = ByteOrder(strings.ToUpper(s))
			if !contains(ByteOrders, r.Order) {
				w.add(v, p, "unknown byte order %q (use ABCD, DCBA, BADC or CDAB)", s)
				r.Order = ABCD
			}
		case "scale":
			if w.float(v, p, &r.Scale) && r.Scale == 0 {
				w.add(v, p, "must not be zero")
				r.Scale = 1
			}
		case "offset":
			w.float(v, p, &r.Offset)
		case "length":
			if !w.integer(v, p, 1, MaxRegistersPerRequest, &length) {
				length = 0
			}
		case "bit":
			if !w.integer(v, p, 0, 15, &bit) {
				bit = 0
			}
		}
	})
	at := func(k string) *yaml.Node {
		if v := lines[k]; v != nil {
			return v
		}
		return n
	}
	p := func(k string) string { return path + "." + k }
	if lines["field"] == nil {
		w.add(n, p("field"), "missing: the reading field this register fills")
	} else if !fieldName.MatchString(r.Field) {
		w.add(at("field"), p("field"), "%q is not a field name (lower case, digits, _)", r.Field)
	}
	if lines["function"] == nil {
		w.add(n, p("function"), "missing: coil, discrete, holding or input")
		r.Function = "?"
	}
	if lines["address"] == nil {
		w.add(n, p("address"), "missing: the register's address")
	}
	if r.Function.Bits() {
		if r.Type == "" {
			r.Type = Bit
		} else if r.Type != Bit && r.Type != "?" {
			w.add(at("type"), p("type"), "a %s is one bit: its type is BIT, not %s", r.Function, r.Type)
		}
		for _, k := range []string{"length", "bit", "scale", "offset", "byte_order"} {
			if lines[k] != nil {
				w.add(lines[k], p(k), "a %s is one bit and takes no %s", r.Function, k)
			}
		}
		return r
	}
	if r.Type == "" {
		w.add(n, p("type"), "missing: the data type")
		r.Type = "?"
	}
	switch {
	case r.Type == String:
		if length < 0 {
			w.add(n, p("length"), "missing: a STRING needs its length in registers")
			length = 1
		}
		r.Length = uint16(max(length, 1))
	case r.Type.width() > 0 && length > 0 && int(length) != r.Type.width():
		w.add(lines["length"], p("length"), "%s takes %d register(s), not %d", r.Type, r.Type.width(), length)
	}
	if r.Type != String {
		r.Length = uint16(max(r.Type.width(), 1))
	}
	if bit >= 0 {
		if r.Type != Bit {
			w.add(lines["bit"], p("bit"), "only a BIT type has a bit index")
		}
		r.Bit = uint8(bit)
	}
	if r.Type == Bit || r.Type == String {
		for _, k := range []string{"scale", "offset"} {
			if lines[k] != nil {
				w.add(lines[k], p(k), "a %s value takes no %s", r.Type, k)
			}
		}
	}
	if r.Type != "?" && r.end() > 65536 {
		w.add(at("address"), p("address"), "%s at %d runs past the last address 65535", r.Type, r.Address)
	}
	return r
}

// checkRegisters reports duplicate fields, overlapping registers and values
// larger than one request.
func (w *walker) checkRegisters(d *Device) {
	byField := map[string]*Register{}
	for i := range d.Registers {
		r := &d.Registers[i]
		if r.Field == "" {
			continue
		}
		if o, dup := byField[r.Field]; dup {
			w.ps.Add(r.File, r.Line, r.path+".field", "field %q is already filled by the register on line %d", r.Field, o.Line)
			continue
		}
		byField[r.Field] = r
		if !r.Function.Bits() && r.count() > d.MaxRequestRegisters {
			w.ps.Add(r.File, r.Line, r.path+".length", "%d registers do not fit in one request (max_request_registers %d)", r.count(), d.MaxRequestRegisters)
		}
	}
	sorted := make([]*Register, 0, len(d.Registers))
	for i := range d.Registers {
		if r := &d.Registers[i]; contains(Functions, r.Function) && r.Type != "?" {
			sorted = append(sorted, r)
		}
	}
	slices.SortStableFunc(sorted, func(a, b *Register) int {
		if a.Function != b.Function {
			return strings.Compare(string(a.Function), string(b.Function))
		}
		return int(a.Address) - int(b.Address)
	})
	for i, r := range sorted {
		for _, o := range sorted[:i] {
			if o.Function != r.Function || o.end() <= int(r.Address) {
				continue
			}
			// Flags packed in one status register may share it, one bit each.
			if o.Type == Bit && r.Type == Bit && !r.Function.Bits() && o.Address == r.Address && o.Bit != r.Bit {
				continue
			}
			w.ps.Add(r.File, r.Line, r.path+".address", "%s %s overlaps %s (%s %s, line %d)",
				r.Function, span(r), o.Field, o.Function, span(o), o.Line)
		}
	}
}

func span(r *Register) string {
	if r.count() == 1 {
		return strconv.Itoa(int(r.Address))
	}
	return fmt.Sprintf("%d-%d", r.Address, r.end()-1)
}
