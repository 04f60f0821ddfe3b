package modbus

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/fleet"
)

// walker reads a YAML node tree by hand, continuing past mistakes so that every
// problem is reported at once with its line and the dotted path of its field.
type walker struct {
	file string
	ps   *fleet.Problems
}

func (w *walker) add(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	w.ps.Add(w.file, line, field, format, args...)
}

// mapping calls set for each key of n in document order, and reports keys that
// set does not know (set returns false) with the nearest known key.
func (w *walker) mapping(n *yaml.Node, path string, known []string, set func(key string, v *yaml.Node, path string)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		w.add(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		if !contains(known, k.Value) {
			if s := suggest(k.Value, known); s != "" {
				w.add(k, p, "unknown setting (did you mean %s?)", s)
			} else {
				w.add(k, p, "unknown setting (known: %s)", strings.Join(known, ", "))
			}
			continue
		}
		if seen[k.Value] {
			w.add(k, p, "set twice")
			continue
		}
		seen[k.Value] = true
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		set(k.Value, v, p)
	}
}

func (w *walker) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		w.add(n, path, "expected a single value, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (w *walker) str(n *yaml.Node, path string, dst *string) {
	if s, ok := w.scalar(n, path); ok {
		*dst = s
	}
}

func (w *walker) integer(n *yaml.Node, path string, lo, hi int64, dst *int64) bool {
	s, ok := w.scalar(n, path)
	if !ok {
		return false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
	if err != nil || i < lo || i > hi {
		w.add(n, path, "%q is not a whole number from %d to %d", s, lo, hi)
		return false
	}
	*dst = i
	return true
}

func (w *walker) float(n *yaml.Node, path string, dst *float64) bool {
	s, ok := w.scalar(n, path)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		w.add(n, path, "%q is not a finite number", s)
		return false
	}
	*dst = f
	return true
}

func (w *walker) duration(n *yaml.Node, path string, dst *time.Duration) bool {
	s, ok := w.scalar(n, path)
	if !ok {
		return false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		w.add(n, path, "%q is not a duration (use for example 500ms, 10s, 1m)", s)
		return false
	}
	*dst = d
	return true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains[T comparable](list []T, s T) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the known key nearest to key, when it is near enough to be a
// misspelling.
func suggest(key string, known []string) string { return fleet.Closest(key, known) }
