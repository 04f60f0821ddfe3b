package modbus

import (
	"embed"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/fleet"
)

//go:embed profiles/*.yaml
var profileFiles embed.FS

// Profile is a shipped register map for one model of equipment.
type Profile struct {
	Name         string
	Kind         string // kind of the readings
	Event        string // event name when each reading is an event
	EmitOnChange string // field whose change marks a new reading
	MaxGap       int
	Registers    []Register
}

var (
	profilesOnce sync.Once
	profiles     map[string]*Profile
	profilesErr  error
)

func loadProfiles() {
	profiles = map[string]*Profile{}
	var ps fleet.Problems
	entries, _ := profileFiles.ReadDir("profiles")
	for _, e := range entries {
		file := path.Join("profiles", e.Name())
		data, err := profileFiles.ReadFile(file)
		if err != nil {
			ps.Add(file, 0, "", "%v", err)
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			ps.Add(file, 0, "", "%v", err)
			continue
		}
		w := &walker{file: file, ps: &ps}
		p := &Profile{}
		w.mapping(doc.Content[0], "", []string{"name", "kind", "event", "emit_on_change", "max_gap", "registers"},
			func(k string, v *yaml.Node, pth string) {
				var i int64
				switch k {
				case "name":
					w.str(v, pth, &p.Name)
				case "kind":
					w.str(v, pth, &p.Kind)
				case "event":
					w.str(v, pth, &p.Event)
				case "emit_on_change":
					w.str(v, pth, &p.EmitOnChange)
				case "max_gap":
					if w.integer(v, pth, 0, MaxRegistersPerRequest, &i) {
						p.MaxGap = int(i)
					}
				case "registers":
					for j, rn := range v.Content {
						p.Registers = append(p.Registers, w.register(rn, fmt.Sprintf("registers[%d]", j)))
					}
				}
			})
		if want := strings.TrimSuffix(e.Name(), ".yaml"); p.Name != want {
			ps.Add(file, 0, "name", "profile %q is in a file named for %q", p.Name, want)
		}
		d := Device{Registers: p.Registers, MaxRequestRegisters: MaxRegistersPerRequest}
		w.checkRegisters(&d)
		profiles[p.Name] = p
	}
	profilesErr = ps.Err()
}

// LoadProfile returns the shipped profile called name. The profile and its
// registers are shared: callers must not modify them.
func LoadProfile(name string) (*Profile, error) {
	profilesOnce.Do(loadProfiles)
	if profilesErr != nil {
		return nil, fmt.Errorf("shipped profiles are broken: %w", profilesErr)
	}
	p, ok := profiles[name]
	if !ok {
		return nil, fmt.Errorf("unknown profile %q (shipped: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// ProfileNames lists the shipped profiles, sorted.
func ProfileNames() []string {
	profilesOnce.Do(loadProfiles)
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
