package modbus

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

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
	Field    string    // reading field it fills, named as in docs/domain.md
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

// checkRegisters reports duplicate fields, overlapping registers and values
// larger than one request.
func checkRegisters(ps *fleet.Problems, d *Device) {
	byField := map[string]*Register{}
	for i := range d.Registers {
		r := &d.Registers[i]
		if r.Field == "" {
			continue
		}
		if o, dup := byField[r.Field]; dup {
			ps.Add(r.File, r.Line, r.path+".field", "field %q is already filled by the register on line %d", r.Field, o.Line)
			continue
		}
		byField[r.Field] = r
		if !r.Function.Bits() && r.count() > d.MaxRequestRegisters {
			ps.Add(r.File, r.Line, r.path+".length", "%d registers do not fit in one request (max_request_registers %d)", r.count(), d.MaxRequestRegisters)
		}
	}
	sorted := make([]*Register, 0, len(d.Registers))
	for i := range d.Registers {
		if r := &d.Registers[i]; slices.Contains(Functions, r.Function) && r.Type != "?" {
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
			ps.Add(r.File, r.Line, r.path+".address", "%s %s overlaps %s (%s %s, line %d)",
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
