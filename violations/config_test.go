package violations_test

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/violations"
)

func TestParseConfig(t *testing.T) {
	var doc yaml.Node
	src := "illegal_dumping: {min_drop_kg: 400, window: 15m}\ntoilet_odour:\n  max_nh3: {1: 0.25}\nlateness: 5m\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	c, err := violations.ParseConfig("sanigate.yaml", &doc)
	if err != nil {
		t.Fatal(err)
	}
	def := violations.DefaultConfig()
	if c.IllegalDumping.MinDropKG != 400 || c.IllegalDumping.Window.D() != 15*time.Minute || c.IllegalDumping.MaxSpeedKmh != 3 {
		t.Errorf("illegal_dumping: %+v", c.IllegalDumping)
	}
	if c.ToiletOdour.MaxNH3[1] != 0.25 || c.Lateness.D() != 5*time.Minute || c.Spillage != def.Spillage {
		t.Errorf("got %+v", c)
	}

	if err := yaml.Unmarshal([]byte("illegal_dumping:\n  min_drop: 400\nbin_overflow: {min_duration: soon}\n"), &doc); err != nil {
		t.Fatal(err)
	}
	_, err = violations.ParseConfig("sanigate.yaml", &doc)
	if err == nil || !strings.Contains(err.Error(), "sanigate.yaml:2: violations.illegal_dumping.min_drop: unknown setting") ||
		!strings.Contains(err.Error(), `"soon" is not a duration`) {
		t.Errorf("got %v", err)
	}

	if err := yaml.Unmarshal([]byte("readback_queue: -1\n"), &doc); err != nil {
		t.Fatal(err)
	}
	if _, err = violations.ParseConfig("sanigate.yaml", &doc); err == nil || !strings.Contains(err.Error(), "readback_queue: must not be negative") {
		t.Errorf("readback_queue -1: got %v", err)
	}
}
