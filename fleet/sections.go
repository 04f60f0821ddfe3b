package fleet

import (
	"reflect"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// SectionParser decodes and checks one top-level section of sanigate.yaml
// that another package owns (cases, violations, modbus). It reports its
// problems through d, which carries the file's name and the line of every
// field, and returns the section's value; c is the rest of the configuration,
// already decoded (a section may check itself against the devices).
type SectionParser func(d *Decoder, n *yaml.Node, c *Config) any

var (
	sectionsMu sync.Mutex
	sections   = map[string]SectionParser{}
)

// RegisterSection makes Parse decode the section name with p, in the same
// pass as the rest of the file, so that one run reports every problem of
// every section. The Config must have a yaml.Node field tagged name. A name
// registered twice is a programming error and panics.
func RegisterSection(name string, p SectionParser) {
	sectionsMu.Lock()
	defer sectionsMu.Unlock()
	if _, dup := sections[name]; dup {
		panic("fleet: section " + name + " registered twice")
	}
	if _, ok := sectionField(name); !ok {
		panic("fleet: Config has no yaml.Node field for section " + name)
	}
	sections[name] = p
}

// Section returns the decoded value of a registered section, or nil when the
// configuration was not made by Parse.
func (c *Config) Section(name string) any { return c.sections[name] }

// SetSection stores the decoded value of a section; it is for configurations
// built in code rather than by Parse.
func (c *Config) SetSection(name string, v any) {
	if c.sections == nil {
		c.sections = map[string]any{}
	}
	c.sections[name] = v
}

// parseSections runs every registered section parser, in name order.
func (c *Config) parseSections(d *Decoder) {
	sectionsMu.Lock()
	names := make([]string, 0, len(sections))
	for name := range sections {
		names = append(names, name)
	}
	sectionsMu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		i, _ := sectionField(name)
		node := reflect.ValueOf(c).Elem().Field(i).Addr().Interface().(*yaml.Node)
		c.SetSection(name, sections[name](d, node, c))
	}
}

func sectionField(name string) (int, bool) {
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == name && f.Type == nodeType {
			return i, true
		}
	}
	return 0, false
}

// SectionNode returns the node of a section, for parsers that take it
// directly (a missing section is a node of kind 0).
func SectionNode(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	return n
}
