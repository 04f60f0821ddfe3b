package violations

import "time"

// windowSlots is how many samples a time-window series keeps at most: one a
// slot of the window, whatever the reporting rate.
const windowSlots = 32

// appendLowest appends v to a series kept over window, at most one sample a
// slot (window/windowSlots): within a slot the lower value stays. The lowest
// value of the window is kept exactly; its time moves by less than a slot.
func appendLowest(s []sample, v sample, window time.Duration) []sample {
	if n := len(s); n > 0 && v.T.Sub(s[n-1].T) < window/windowSlots && !v.T.Before(s[n-1].T) {
		if v.V < s[n-1].V {
			s[n-1] = v
		}
		return s
	}
	return append(s, v)
}

// appendHighest is appendLowest for the highest value of a window: at most
// one sample a slot, the higher one staying. Kept samples are at least a slot
// apart, so a window holds at most windowSlots+1 of them.
func appendHighest(s []sample, v sample, window time.Duration) []sample {
	if n := len(s); n > 0 && v.T.Sub(s[n-1].T) < window/windowSlots && !v.T.Before(s[n-1].T) {
		if v.V > s[n-1].V {
			s[n-1] = v
		}
		return s
	}
	return append(s, v)
}
