package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/sanigate/sanigate/telemetry"
)

// Type is the data type of a register value, named as in Telegraf and the
// ThingsBoard gateway.
type Type string

// Data types of register values.
const (
	Int16   Type = "INT16"
	Uint16  Type = "UINT16"
	Int32   Type = "INT32"
	Uint32  Type = "UINT32"
	Int64   Type = "INT64"
	Uint64  Type = "UINT64"
	Float32 Type = "FLOAT32-IEEE"
	Float64 Type = "FLOAT64-IEEE"
	Bit     Type = "BIT"
	String  Type = "STRING"
)

// Types lists every data type, in the order the documentation gives them.
var Types = []Type{Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, Bit, String}

// width is the number of 16-bit registers a value of type t takes; 0 means the
// length is set by the register's length (STRING).
func (t Type) width() int {
	switch t {
	case Int16, Uint16, Bit:
		return 1
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	}
	return 0
}

// ByteOrder is the order of the bytes of a multi-register value, written as the
// letters A (most significant byte) to D for a 32-bit value. ABCD is big endian,
// DCBA little endian, BADC swaps the bytes of each register and CDAB swaps the
// registers. For 16-bit values only the byte swap matters; for 64-bit values
// the same two swaps apply to the four registers.
type ByteOrder string

// Byte and word orders.
const (
	ABCD ByteOrder = "ABCD"
	DCBA ByteOrder = "DCBA"
	BADC ByteOrder = "BADC"
	CDAB ByteOrder = "CDAB"
)

// ByteOrders lists every byte order.
var ByteOrders = []ByteOrder{ABCD, DCBA, BADC, CDAB}

func (o ByteOrder) swapBytes() bool { return o == DCBA || o == BADC }
func (o ByteOrder) swapWords() bool { return o == DCBA || o == CDAB }

// ErrNotANumber is returned, wrapped, when a floating-point register holds NaN
// or an infinity, which field devices use to say "no value".
var ErrNotANumber = errors.New("modbus: register holds no number (NaN or infinity)")

// normalise copies the raw bytes of a register value (as they came off the
// wire, register by register, each register big endian) into big-endian order.
func (o ByteOrder) normalise(dst, raw []byte) {
	n := len(raw) / 2
	for i := 0; i < n; i++ {
		src := i
		if o.swapWords() {
			src = n - 1 - i
		}
		hi, lo := raw[2*src], raw[2*src+1]
		if o.swapBytes() {
			hi, lo = lo, hi
		}
		dst[2*i], dst[2*i+1] = hi, lo
	}
}

// denormalise is the inverse of normalise.
func (o ByteOrder) denormalise(raw, be []byte) {
	n := len(be) / 2
	for i := 0; i < n; i++ {
		dst := i
		if o.swapWords() {
			dst = n - 1 - i
		}
		hi, lo := be[2*i], be[2*i+1]
		if o.swapBytes() {
			hi, lo = lo, hi
		}
		raw[2*dst], raw[2*dst+1] = hi, lo
	}
}

// scaled reports whether the register's value is transformed, which makes an
// integer register a float field.
func (r *Register) scaled() bool { return r.Scale != 1 || r.Offset != 0 }

// decodeRegisters decodes a register value from raw, the register's bytes as
// read (2 x width bytes), and sets its field on rd.
func (r *Register) decodeRegisters(rd *telemetry.Reading, raw []byte) error {
	var buf [8]byte
	switch r.Type {
	case String:
		b := make([]byte, len(raw))
		for i := 0; i+1 < len(raw); i += 2 {
			b[i], b[i+1] = raw[i], raw[i+1]
			if r.Order.swapBytes() {
				b[i], b[i+1] = b[i+1], b[i]
			}
		}
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
		s := strings.ToValidUTF8(strings.TrimRight(string(b), " "), "\uFFFD")
		rd.SetString(r.Field, s)
		return nil
	case Bit:
		v := binary.BigEndian.Uint16(raw)
		if r.Order.swapBytes() {
			v = v>>8 | v<<8
		}
		rd.SetBool(r.Field, v&(1<<r.Bit) != 0)
		return nil
	}
	be := buf[:len(raw)]
	r.Order.normalise(be, raw)
	var (
		i     int64
		u     uint64
		f     float64
		isInt = true
		isU   = false
	)
	switch r.Type {
	case Int16:
		i = int64(int16(binary.BigEndian.Uint16(be)))
	case Uint16:
		i = int64(binary.BigEndian.Uint16(be))
	case Int32:
		i = int64(int32(binary.BigEndian.Uint32(be)))
	case Uint32:
		i = int64(binary.BigEndian.Uint32(be))
	case Int64:
		i = int64(binary.BigEndian.Uint64(be))
	case Uint64:
		u, isU = binary.BigEndian.Uint64(be), true
	case Float32:
		f, isInt = float64(math.Float32frombits(binary.BigEndian.Uint32(be))), false
	case Float64:
		f, isInt = math.Float64frombits(binary.BigEndian.Uint64(be)), false
	default:
		return fmt.Errorf("field %s: unknown type %q", r.Field, r.Type)
	}
	if !isInt && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return fmt.Errorf("field %s: %w", r.Field, ErrNotANumber)
	}
	if isInt && !r.scaled() {
		if isU {
			// Readings keep integers in a float64; beyond 2^63 an unsigned
			// counter cannot be an InfluxDB integer, so it becomes a float.
			if u > math.MaxInt64 {
				rd.SetFloat(r.Field, float64(u))
				return nil
			}
			i = int64(u)
		}
		rd.SetInt(r.Field, i)
		return nil
	}
	if isInt {
		if isU {
			f = float64(u)
		} else {
			f = float64(i)
		}
	}
	rd.SetFloat(r.Field, f*r.Scale+r.Offset)
	return nil
}

// decodeBit sets the field of a coil or discrete input from bit index i of
// packed, a read-coils response (least significant bit first).
func (r *Register) decodeBit(rd *telemetry.Reading, packed []byte, i int) {
	rd.SetBool(r.Field, packed[i/8]&(1<<(i%8)) != 0)
}

// Encode returns the registers (for holding and input registers) or the single
// bit (0 or 1, for coils and discrete inputs) that a device must hold for this
// register to decode to f, undoing scale and offset. It is the inverse of
// decoding, used by simulators and by tests. For a BIT in a holding or input
// register only the register's own bit is set.
func (r *Register) Encode(f telemetry.Field) ([]uint16, error) {
	if r.Function.Bits() || r.Type == Bit {
		if f.Type == telemetry.String {
			return nil, fmt.Errorf("field %s: a string cannot fill a bit", r.Field)
		}
		on := f.Num != 0
		if r.Function.Bits() {
			return []uint16{b2u(on)}, nil
		}
		var v uint16
		if on {
			v = 1 << r.Bit
		}
		if r.Order.swapBytes() {
			v = v>>8 | v<<8
		}
		return []uint16{v}, nil
	}
	width := r.Type.width()
	if r.Type == String {
		width = int(r.Length)
	}
	be := make([]byte, 2*width)
	if r.Type == String {
		if f.Type != telemetry.String {
			return nil, fmt.Errorf("field %s: a number cannot fill a string", r.Field)
		}
		copy(be, f.Str)
		if r.Order.swapBytes() {
			for i := 0; i+1 < len(be); i += 2 {
				be[i], be[i+1] = be[i+1], be[i]
			}
		}
		return regs(be), nil
	}
	if f.Type == telemetry.String {
		return nil, fmt.Errorf("field %s: a string cannot fill a %s", r.Field, r.Type)
	}
	v := (f.Num - r.Offset) / r.Scale
	switch r.Type {
	case Int16, Uint16:
		binary.BigEndian.PutUint16(be, uint16(int64(math.Round(v))))
	case Int32, Uint32:
		binary.BigEndian.PutUint32(be, uint32(int64(math.Round(v))))
	case Int64:
		binary.BigEndian.PutUint64(be, uint64(int64(math.Round(v))))
	case Uint64:
		binary.BigEndian.PutUint64(be, uint64(math.Round(v)))
	case Float32:
		binary.BigEndian.PutUint32(be, math.Float32bits(float32(v)))
	case Float64:
		binary.BigEndian.PutUint64(be, math.Float64bits(v))
	}
	raw := make([]byte, len(be))
	r.Order.denormalise(raw, be)
	return regs(raw), nil
}

func regs(b []byte) []uint16 {
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return out
}

func b2u(b bool) uint16 {
	if b {
		return 1
	}
	return 0
}
