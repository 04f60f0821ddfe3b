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
		dec := fleet.NewDecoder(file, &ps)
		var spec profileSpec
		dec.Decode(&doc, &spec, "")
		p := &Profile{Name: spec.Name, Kind: spec.Kind, Event: spec.Event, EmitOnChange: spec.EmitOnChange}
		if (setting{dec, ""}).whole("max_gap", spec.MaxGap, 0, MaxRegistersPerRequest) {
			p.MaxGap = int(spec.MaxGap)
		}
		for j, rs := range spec.Registers {
			p.Registers = append(p.Registers, decodeRegister(dec, rs, fmt.Sprintf("registers[%d]", j)))
		}
		if want := strings.TrimSuffix(e.Name(), ".yaml"); p.Name != want {
			ps.Add(file, 0, "name", "profile %q is in a file named for %q", p.Name, want)
		}
		d := Device{Registers: p.Registers, MaxRequestRegisters: MaxRegistersPerRequest}
		checkRegisters(&ps, &d)
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
