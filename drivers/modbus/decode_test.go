package modbus

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/sanigate/sanigate/telemetry"
)

func words(ws ...uint16) []byte {
	b := make([]byte, 2*len(ws))
	for i, w := range ws {
		binary.BigEndian.PutUint16(b[2*i:], w)
	}
	return b
}

// TestDecodeOrders checks every type in every byte order against values
// worked out by hand from the letters: the 32-bit value 0x01020304 is A=01
// B=02 C=03 D=04.
func TestDecodeOrders(t *testing.T) {
	tests := []struct {
		name  string
		typ   Type
		order ByteOrder
		raw   []uint16
		want  telemetry.Field
	}{
		{"int16 ABCD", Int16, ABCD, []uint16{0xFF38}, telemetry.Field{Type: telemetry.Int, Num: -200}},
		{"int16 BADC", Int16, BADC, []uint16{0x38FF}, telemetry.Field{Type: telemetry.Int, Num: -200}},
		{"int16 DCBA", Int16, DCBA, []uint16{0x38FF}, telemetry.Field{Type: telemetry.Int, Num: -200}},
		{"int16 CDAB", Int16, CDAB, []uint16{0xFF38}, telemetry.Field{Type: telemetry.Int, Num: -200}},
		{"uint16 ABCD", Uint16, ABCD, []uint16{0xFF38}, telemetry.Field{Type: telemetry.Int, Num: 65336}},
		{"uint16 DCBA", Uint16, DCBA, []uint16{0x0102}, telemetry.Field{Type: telemetry.Int, Num: 0x0201}},
		{"uint32 ABCD", Uint32, ABCD, []uint16{0x0102, 0x0304}, telemetry.Field{Type: telemetry.Int, Num: 0x01020304}},
		{"uint32 DCBA", Uint32, DCBA, []uint16{0x0102, 0x0304}, telemetry.Field{Type: telemetry.Int, Num: 0x04030201}},
		{"uint32 BADC", Uint32, BADC, []uint16{0x0102, 0x0304}, telemetry.Field{Type: telemetry.Int, Num: 0x02010403}},
		{"uint32 CDAB", Uint32, CDAB, []uint16{0x0102, 0x0304}, telemetry.Field{Type: telemetry.Int, Num: 0x03040102}},
		{"int32 ABCD", Int32, ABCD, []uint16{0xFFFF, 0xFFFE}, telemetry.Field{Type: telemetry.Int, Num: -2}},
		{"int32 CDAB", Int32, CDAB, []uint16{0xFFFE, 0xFFFF}, telemetry.Field{Type: telemetry.Int, Num: -2}},
		{"int32 BADC", Int32, BADC, []uint16{0xFFFF, 0xFEFF}, telemetry.Field{Type: telemetry.Int, Num: -2}},
		{"int32 DCBA", Int32, DCBA, []uint16{0xFEFF, 0xFFFF}, telemetry.Field{Type: telemetry.Int, Num: -2}},
		{"uint64 ABCD", Uint64, ABCD, []uint16{0x0001, 0x0203, 0x0405, 0x0607}, telemetry.Field{Type: telemetry.Int, Num: 0x0001020304050607}},
		{"uint64 CDAB", Uint64, CDAB, []uint16{0x0607, 0x0405, 0x0203, 0x0001}, telemetry.Field{Type: telemetry.Int, Num: 0x0001020304050607}},
		{"uint64 BADC", Uint64, BADC, []uint16{0x0100, 0x0302, 0x0504, 0x0706}, telemetry.Field{Type: telemetry.Int, Num: 0x0001020304050607}},
		{"uint64 DCBA", Uint64, DCBA, []uint16{0x0706, 0x0504, 0x0302, 0x0100}, telemetry.Field{Type: telemetry.Int, Num: 0x0001020304050607}},
		{"uint64 beyond int64", Uint64, ABCD, []uint16{0x8000, 0, 0, 0}, telemetry.Field{Type: telemetry.Float, Num: 9223372036854775808}},
		{"int64 ABCD", Int64, ABCD, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFC18}, telemetry.Field{Type: telemetry.Int, Num: -1000}},
		{"int64 CDAB", Int64, CDAB, []uint16{0xFC18, 0xFFFF, 0xFFFF, 0xFFFF}, telemetry.Field{Type: telemetry.Int, Num: -1000}},
		// 1.5 is 0x3FC00000; -2.25 is 0xC0100000.
		{"float32 ABCD", Float32, ABCD, []uint16{0x3FC0, 0x0000}, telemetry.Field{Type: telemetry.Float, Num: 1.5}},
		{"float32 CDAB", Float32, CDAB, []uint16{0x0000, 0x3FC0}, telemetry.Field{Type: telemetry.Float, Num: 1.5}},
		{"float32 BADC", Float32, BADC, []uint16{0xC03F, 0x0000}, telemetry.Field{Type: telemetry.Float, Num: 1.5}},
		{"float32 DCBA", Float32, DCBA, []uint16{0x0000, 0x10C0}, telemetry.Field{Type: telemetry.Float, Num: -2.25}},
		// 1.5 is 0x3FF8000000000000.
		{"float64 ABCD", Float64, ABCD, []uint16{0x3FF8, 0, 0, 0}, telemetry.Field{Type: telemetry.Float, Num: 1.5}},
		{"float64 CDAB", Float64, CDAB, []uint16{0, 0, 0, 0x3FF8}, telemetry.Field{Type: telemetry.Float, Num: 1.5}},
		{"float64 BADC", Float64, BADC, []uint16{0xF83F, 0, 0, 0}, telemetry.Field{Type: telemetry.Float, Num: 1.5}},
		{"float64 DCBA", Float64, DCBA, []uint16{0, 0, 0, 0xF83F}, telemetry.Field{Type: telemetry.Float, Num: 1.5}},
		{"string ABCD", String, ABCD, []uint16{0x5452, 0x4B2D, 0x3432, 0x0000}, telemetry.Field{Type: telemetry.String, Str: "TRK-42"}},
		{"string BADC", String, BADC, []uint16{0x5254, 0x2D4B, 0x3234, 0x2020}, telemetry.Field{Type: telemetry.String, Str: "TRK-42"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Register{Field: "v", Function: Holding, Type: tc.typ, Order: tc.order, Scale: 1, Length: uint16(len(tc.raw))}
			var rd telemetry.Reading
			if err := r.decodeRegisters(&rd, words(tc.raw...)); err != nil {
				t.Fatal(err)
			}
			got, _ := rd.Get("v")
			tc.want.Name = "v"
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			// Encoding the value gives back the same registers.
			enc, err := r.Encode(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if tc.typ == String {
				return // padding differs: NUL versus spaces
			}
			for i := range enc {
				if enc[i] != tc.raw[i] {
					t.Errorf("encode: got %04x, want %04x", enc, tc.raw)
					break
				}
			}
		})
	}
}

func TestDecodeScaleBitNaN(t *testing.T) {
	var rd telemetry.Reading
	r := Register{Field: "temp_c", Type: Int16, Order: ABCD, Scale: 0.1, Offset: -40}
	if err := r.decodeRegisters(&rd, words(0x01F4)); err != nil {
		t.Fatal(err)
	}
	if f, _ := rd.Get("temp_c"); f.Type != telemetry.Float || math.Abs(f.Num-10) > 1e-9 {
		t.Errorf("scaled: got %+v, want float 10", f)
	}
	b := Register{Field: "door", Type: Bit, Order: ABCD, Bit: 9, Scale: 1}
	if err := b.decodeRegisters(&rd, words(0x0200)); err != nil {
		t.Fatal(err)
	}
	if f, _ := rd.Get("door"); f.Type != telemetry.Bool || f.Num != 1 {
		t.Errorf("bit: got %+v, want true", f)
	}
	n := Register{Field: "nh3_mgm3", Type: Float32, Order: ABCD, Scale: 1}
	if err := n.decodeRegisters(&rd, words(0x7FC0, 0)); !errors.Is(err, ErrNotANumber) {
		t.Errorf("NaN: got %v, want ErrNotANumber", err)
	}
	if _, ok := rd.Get("nh3_mgm3"); ok {
		t.Error("NaN: the field was set")
	}
	c := Register{Field: "lid_open", Function: Coil, Type: Bit}
	c.decodeBit(&rd, []byte{0x00, 0x04}, 10)
	if f, _ := rd.Get("lid_open"); f.Num != 1 {
		t.Errorf("coil 10: got %+v, want true", f)
	}
}

// BenchmarkDecode decodes the toilet controller's eleven values from the two
// replies of one poll.
func BenchmarkDecode(b *testing.B) {
	p, err := LoadProfile("toilet_controller")
	if err != nil {
		b.Fatal(err)
	}
	d := Device{Registers: p.Registers, MaxRequestRegisters: 125, MaxRequestBits: 2000}
	reqs := plan(&d)
	data := make([][]byte, len(reqs))
	for i, rq := range reqs {
		data[i] = make([]byte, 2*int(rq.count))
		for j := range data[i] {
			data[i][j] = byte(j * 7)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		rd := telemetry.Reading{Fields: make([]telemetry.Field, 0, 16)}
		for i, rq := range reqs {
			for _, r := range rq.regs {
				off := 2 * int(r.Address-rq.start)
				_ = r.decodeRegisters(&rd, data[i][off:off+2*r.count()])
			}
		}
	}
}
