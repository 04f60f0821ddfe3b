package cases

import (
	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/fleet"
)

func init() {
	fleet.RegisterSection("cases", func(d *fleet.Decoder, n *yaml.Node, _ *fleet.Config) any {
		return decodeSection(d, n)
	})
}

// FromConfig returns the cases section of a configuration made by
// fleet.Parse, or the defaults when it has none.
func FromConfig(cfg *fleet.Config) Config {
	if c, ok := cfg.Section("cases").(Config); ok {
		return c
	}
	var c Config
	c.applyDefaults()
	return c
}

// ParseConfig decodes the `cases:` section of the configuration file named
// file from its YAML node (nil for an absent section) and validates it. It
// refuses unknown settings, and reports every problem at once as
// fleet.Problems with the file, the line and the field ("cases.units[0].id").
func ParseConfig(file string, node *yaml.Node) (Config, error) {
	var ps fleet.Problems
	cfg := decodeSection(fleet.NewDecoder(file, &ps), node)
	if err := ps.Err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func decodeSection(d *fleet.Decoder, node *yaml.Node) Config {
	var cfg Config
	if node = fleet.SectionNode(node); node != nil {
		d.Decode(node, &cfg, "cases")
		for _, p := range cfg.Validate() {
			if path := "cases." + p.Field; !d.Failed(path) {
				d.Add(path, "%s", p.Msg)
			}
		}
	}
	cfg.applyDefaults()
	return cfg
}
