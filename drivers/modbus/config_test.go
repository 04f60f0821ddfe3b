package modbus

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestConfigGolden parses each testdata/config_*/sanigate.yaml and compares
// the problems, or for a valid file the devices and their request plans, with
// want.txt.
func TestConfigGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/config_*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "sanigate.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Modbus yaml.Node `yaml:"modbus"`
			}
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			var got string
			cfg, err := ParseConfig("sanigate.yaml", &doc.Modbus)
			if err != nil {
				got = err.Error() + "\n"
			} else {
				got = describeConfig(cfg)
			}
			golden(t, filepath.Join(dir, "want.txt"), got)
		})
	}
}

// describeConfig prints what a parsed configuration will do: each device's
// settings and the requests of one poll.
func describeConfig(cfg *Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d device(s)\n", len(cfg.Devices))
	for i := range cfg.Devices {
		d := &cfg.Devices[i]
		fmt.Fprintf(&b, "%s kind=%s event=%q site=%q emit_on_change=%q transport=%s address=%s unit=%d poll=%s timeout=%s",
			d.ID, d.Kind, d.Event, d.Site, d.EmitOnChange, d.Transport, d.Address, d.UnitID, d.PollInterval, d.Timeout)
		if d.Transport == RTU {
			fmt.Fprintf(&b, " serial=%d/%d%s%d", d.BaudRate, d.DataBits, d.Parity, d.StopBits)
		}
		b.WriteString("\n")
		for _, rq := range plan(d) {
			fmt.Fprintf(&b, "  read %s %d+%d:", rq.fn, rq.start, rq.count)
			for _, r := range rq.regs {
				fmt.Fprintf(&b, " %s(%s", r.Field, r.Type)
				if !r.Function.Bits() {
					fmt.Fprintf(&b, " %s", r.Order)
				}
				if r.scaled() {
					fmt.Fprintf(&b, " x%g%+g", r.Scale, r.Offset)
				}
				b.WriteString(")")
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestProfilesParse(t *testing.T) {
	names := ProfileNames()
	if want := []string{"compactor_bin", "toilet_controller", "weighbridge"}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("profiles: got %v, want %v", names, want)
	}
	for _, n := range names {
		if _, err := LoadProfile(n); err != nil {
			t.Errorf("profile %s: %v", n, err)
		}
	}
	if _, err := LoadProfile("nope"); err == nil {
		t.Error("unknown profile: got no error")
	}
}
