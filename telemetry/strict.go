package telemetry

import (
	"fmt"
	"unicode"
)

// members counts the members of the JSON object obj (its top-level
// colons outside strings). Fewer distinct keys in the decoded map than
// members means a key was given twice, "a" and "\u0061" included.
func members(obj []byte) int {
	n, depth, inStr, esc := 0, 0, false, false
	for _, c := range obj {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			n++
		}
	}
	return n
}

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
