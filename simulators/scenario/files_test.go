package scenario_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sanigate/sanigate/simulators/scenario"
)

func TestWriteFiles(t *testing.T) {
	cfg := loadDemo(t)
	sc, err := scenario.Generate(cfg, 9, days[1])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	batched := sc.Batched(time.Hour)
	if err := sc.WriteFiles(dir, batched); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "messages.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc2 := bufio.NewScanner(f)
	sc2.Buffer(nil, 1<<20)
	n := 0
	for sc2.Scan() {
		var m scenario.Message
		if err := json.Unmarshal(sc2.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
	}
	if n != len(batched) || n >= len(sc.Live()) {
		t.Errorf("%d lines for %d batched messages (%d live)", n, len(batched), len(sc.Live()))
	}
	b, err := os.ReadFile(filepath.Join(dir, "truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth struct {
		Truth []scenario.Expected `json:"truth"`
	}
	if err := json.Unmarshal(b, &truth); err != nil || len(truth.Truth) != len(sc.Truth) {
		t.Errorf("truth.json: %d entries, %v", len(truth.Truth), err)
	}
	if m := sc.Live()[0]; m.Topic() != "sanigate/v1/devices/"+m.Device+"/"+m.Channel {
		t.Errorf("topic %q", m.Topic())
	}
}
