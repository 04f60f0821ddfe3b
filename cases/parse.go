package cases

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/sanigate/sanigate/fleet"
	"gopkg.in/yaml.v3"
)

// ParseConfig decodes the `cases:` section of the configuration file named
// file from its YAML node (nil for an absent section) and validates it. It
// refuses unknown settings, and reports every problem at once as
// fleet.Problems with the file, the line and the field ("cases.units[0].id").
func ParseConfig(file string, node *yaml.Node) (Config, error) {
	var cfg Config
	if node == nil || node.Kind == 0 || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		cfg.applyDefaults()
		return cfg, nil
	}
	var ps fleet.Problems
	pos := map[string]int{"": node.Line}
	walkKeys(file, node, reflect.TypeOf(cfg), "", pos, &ps)
	if err := node.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if ok := asTypeError(err, &te); ok {
			for _, msg := range te.Errors {
				line := 0
				if m := yamlLine.FindStringSubmatch(msg); m != nil {
					line, _ = strconv.Atoi(m[1])
					msg = strings.TrimSpace(yamlLine.ReplaceAllString(msg, ""))
				}
				ps.Add(file, line, "cases", "%s", msg)
			}
		} else {
			ps.Add(file, node.Line, "cases", "%v", err)
		}
	}
	for _, p := range cfg.Validate() {
		ps.Add(file, lineOf(pos, p.Field), "cases."+p.Field, "%s", p.Msg)
	}
	if err := ps.Err(); err != nil {
		return Config{}, err
	}
	cfg.applyDefaults()
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^line (\d+):`)

func asTypeError(err error, te **yaml.TypeError) bool {
	t, ok := err.(*yaml.TypeError)
	if ok {
		*te = t
	}
	return ok
}

// lineOf finds the line of a field, or of its nearest enclosing one.
func lineOf(pos map[string]int, field string) int {
	for f := field; ; {
		if l, ok := pos[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			return pos[""]
		}
		f = f[:i]
	}
}

// walkKeys records the line of every setting and reports keys that match no
// yaml tag of t.
func walkKeys(file string, n *yaml.Node, t reflect.Type, path string, pos map[string]int, ps *fleet.Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			pos[p] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				ps.Add(file, k.Line, "cases."+p, "unknown setting %q%s", k.Value, suggestion(k.Value, fields))
				continue
			}
			walkKeys(file, v, ft, p, pos, ps)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			pos[p] = c.Line
			walkKeys(file, c, t.Elem(), p, pos, ps)
		}
	}
}

// suggestion names the known setting closest to a misspelt one.
func suggestion(key string, fields map[string]reflect.Type) string {
	known := make([]string, 0, len(fields))
	for f := range fields {
		known = append(known, f)
	}
	if best := fleet.Closest(key, known); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}
