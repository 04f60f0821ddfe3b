// Package fleet is the registry of the gateway: devices and their credentials,
// places, routes and schedules, and the loading and validation of sanigate.yaml.
// It imports none of the other packages of the gateway.
package fleet

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one mistake in a configuration or geometry file.
type Problem struct {
	File  string
	Line  int
	Field string // dotted path, for example "devices[3].kind"
	Msg   string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteByte(':')
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:", p.Line)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every mistake found while loading; it is returned as one error so
// that an operator sees them all at once.
type Problems []Problem

// Error lists every problem, one per line, ordered by file and line.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].File != sorted[j].File {
			return sorted[i].File < sorted[j].File
		}
		return sorted[i].Line < sorted[j].Line
	})
	lines := make([]string, 0, len(sorted)+1)
	lines = append(lines, fmt.Sprintf("%d configuration problem(s):", len(sorted)))
	for _, p := range sorted {
		lines = append(lines, "  "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Add appends a problem.
func (ps *Problems) Add(file string, line int, field, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Err returns ps as an error, or nil when there are none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}
