package modbus

import (
	"slices"
	"strings"
)

// request is one read of a contiguous block of registers or bits, and the
// values decoded from it.
type request struct {
	fn    Function
	start uint16
	count uint16 // registers or bits
	regs  []*Register
}

// plan groups the registers of d into as few read requests as the protocol and
// the device allow: values of one function are joined while the block stays
// within max_request_registers (or max_request_bits) and the unused span
// between two values is at most max_gap. Requests come in a fixed order
// (function, then address), so a device sees the same sequence every poll.
func plan(d *Device) []request {
	regs := make([]*Register, len(d.Registers))
	for i := range d.Registers {
		regs[i] = &d.Registers[i]
	}
	slices.SortStableFunc(regs, func(a, b *Register) int {
		if c := strings.Compare(string(a.Function), string(b.Function)); c != 0 {
			return c
		}
		return int(a.Address) - int(b.Address)
	})
	var out []request
	for _, r := range regs {
		limit := d.MaxRequestRegisters
		if r.Function.Bits() {
			limit = d.MaxRequestBits
		}
		if n := len(out); n > 0 {
			last := &out[n-1]
			end := int(last.start) + int(last.count)
			newEnd := max(end, r.end())
			if last.fn == r.Function && int(r.Address)-end <= d.MaxGap && newEnd-int(last.start) <= limit {
				last.count = uint16(newEnd - int(last.start))
				last.regs = append(last.regs, r)
				continue
			}
		}
		out = append(out, request{fn: r.Function, start: r.Address, count: uint16(r.count()), regs: []*Register{r}})
	}
	return out
}
