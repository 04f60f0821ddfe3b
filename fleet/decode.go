package fleet

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decoder fills Go values from a YAML node tree, continuing past mistakes so
// that every problem in a file is reported at once, each with its line and the
// dotted path of its field, in one wording for every section of the file. It
// knows the yaml struct tags and refuses unknown keys, which catch misspelt
// settings. A value already in the destination (a default) stays where the
// file does not set it; maps are merged into.
//
// Every package that owns a section of sanigate.yaml decodes it with a
// Decoder, so that fleet, cases, violations and drivers/modbus report their
// mistakes alike.
type Decoder struct {
	// File names the configuration file in problems.
	File string
	// Problems collects every mistake found.
	Problems *Problems
	// Pos maps a field path ("devices[3].kind") to its line in File.
	Pos map[string]int
}

// NewDecoder returns a Decoder for file that adds its problems to ps.
func NewDecoder(file string, ps *Problems) *Decoder {
	return &Decoder{File: file, Problems: ps, Pos: map[string]int{}}
}

var (
	durationType     = reflect.TypeOf(Duration(0))
	timeDurationType = reflect.TypeOf(time.Duration(0))
	nodeType         = reflect.TypeOf(yaml.Node{})
)

// Decode fills the value v points to from n; path is the dotted path of n in
// the file ("cases"), prefixed to every field of its problems.
func (d *Decoder) Decode(n *yaml.Node, v any, path string) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("fleet: Decode needs a non-nil pointer")
	}
	if n == nil || n.Kind == 0 {
		return
	}
	d.decode(n, rv.Elem(), path)
}

// AddAt reports a problem at the line of node n.
func (d *Decoder) AddAt(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.Problems.Add(d.File, line, path, format, args...)
}

// Add reports a problem at the line of path, or of its nearest enclosing
// field that the file sets.
func (d *Decoder) Add(path, format string, args ...any) {
	d.Problems.Add(d.File, d.Line(path), path, format, args...)
}

// Has reports whether the file sets the field at path.
func (d *Decoder) Has(path string) bool {
	_, ok := d.Pos[path]
	return ok
}

// Line returns the line of path, or of its nearest enclosing field that the
// file sets (0 when none is).
func (d *Decoder) Line(path string) int { return lineOf(d.Pos, path) }

// Failed reports whether a problem was already reported for path, so that
// a validation does not report an unreadable value a second time.
func (d *Decoder) Failed(path string) bool {
	for _, p := range *d.Problems {
		if p.Field == path && p.File == d.File {
			return true
		}
	}
	return false
}

// lineOf finds the line of a field, or of its nearest enclosing one.
func lineOf(pos map[string]int, path string) int {
	for {
		if l, ok := pos[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

func (d *Decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.Pos[path] = n.Line
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.AddAt(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *Decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.AddAt(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		kv := reflect.New(v.Type().Key()).Elem()
		if !d.decodeScalar(k, kv, fp) {
			continue
		}
		ev := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(kv); old.IsValid() {
			ev.Set(old)
		}
		d.decode(val, ev, fp)
		v.SetMapIndex(kv, ev)
	}
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.AddAt(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			d.AddAt(k, fp, "unknown setting %q%s", k.Value, suggest(k.Value, fields))
			continue
		}
		if seen[k.Value] {
			d.AddAt(k, fp, "set twice")
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), fp)
	}
}

// decodeScalar sets v from a scalar node; it reports false after a problem.
func (d *Decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.ScalarNode {
		d.AddAt(n, path, "expected a single value, got %s", describe(n))
		return false
	}
	s := n.Value
	if v.Type() == durationType || v.Type() == timeDurationType {
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.AddAt(n, path, "%q is not a duration (use for example 30s, 5m, 1h)", s)
			return false
		}
		v.SetInt(int64(dur))
		return true
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.AddAt(n, path, "%q is not true or false", s)
			return false
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.AddAt(n, path, "%q is not a whole number", s)
			return false
		}
		v.SetInt(i)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		i, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.AddAt(n, path, "%q is not a whole number from 0 to %d", s, uint64(1)<<v.Type().Bits()-1)
			return false
		}
		v.SetUint(i)
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.AddAt(n, path, "%q is not a finite number", s)
			return false
		}
		v.SetFloat(f)
	default:
		d.AddAt(n, path, "cannot hold a value of type %s", v.Type())
		return false
	}
	return true
}

// Describe names what a node holds, for "expected ..., got ..." problems.
func Describe(n *yaml.Node) string { return describe(n) }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names the closest known setting when a key looks misspelt.
func suggest(key string, fields map[string]int) string {
	known := make([]string, 0, len(fields))
	for f := range fields {
		known = append(known, f)
	}
	if best := Closest(key, known); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// Closest returns the word of known nearest to key (at most two edits away,
// the alphabetically first of equals), or "" when none is that close: the
// "did you mean" of configuration errors.
func Closest(key string, known []string) string {
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	best, bestD := "", 3
	for _, k := range sorted {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Duration is a time.Duration written in configuration as "30s", "5m" or "1h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalYAML writes the duration as "10m0s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
