package telemetry

import (
	"fmt"
	"unicode"
)

// badText reports a control or bidirectional formatting character in a
// text field: they hide or reorder what an operator reads in a dashboard
// or a case.
func badText(s string) error {
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("control character %U", r)
		case r == '\u061c' || r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069'):
			return fmt.Errorf("bidirectional formatting character %U", r)
		case r == '\ufffd':
			return fmt.Errorf("invalid UTF-8")
		}
	}
	return nil
}
