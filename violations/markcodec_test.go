package violations

import (
	"bytes"
	"context"
	"encoding/gob"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/scenario"
	"github.com/sanigate/sanigate/telemetry"
)

// TestMarkCodec runs half a simulated day of the demo fleet, so that every
// kind of device holds open spells, tracks and samples, then encodes each
// device's state as a mark, all through one shard's codec, and checks that
// it reads back as the state encoded alone does, and is counted against
// the replay budget at what it holds, less than that lone encoding.
func TestMarkCodec(t *testing.T) {
	cfg, err := fleet.Load(filepath.Join(testenv.RepoRoot(), "examples", "demo", "sanigate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, cfg.Location())
	sc, err := scenario.Generate(cfg, 7, day)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, d := range cfg.Devices {
		kinds[d.ID] = d.Kind
	}
	codec := telemetry.NewCodec()
	var rs []telemetry.Reading
	for _, m := range sc.Messages {
		if m.PublishAt.After(day.Add(14 * time.Hour)) {
			break
		}
		at := m.PublishAt
		codec.Now = func() time.Time { return at.Add(time.Minute) }
		got, err := codec.Decode(m.Device, kinds[m.Device], m.Channel == "events", m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, got...)
	}
	e := NewEngine(cfg, DefaultConfig(), &discard{}, EngineOptions{Shards: 1})
	if err := e.ProcessReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	var c markCodec
	seen := map[string]int{}
	for _, d := range e.shards[0].devices {
		var alone bytes.Buffer
		if err := gob.NewEncoder(&alone).Encode(d); err != nil {
			t.Fatal(err)
		}
		n := alone.Len()
		want := &deviceState{}
		if err := gob.NewDecoder(&alone).Decode(want); err != nil {
			t.Fatal(err)
		}
		state, head, err := c.encode(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMark(&mark{state: state, head: head})
		if err != nil {
			t.Fatalf("%s: %v", d.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read back\n%+v\nwant\n%+v", d.ID, got, want)
		}
		// The budget counts a mark as it is held, which is less than
		// its state encoded alone (that carries the types, 2 KB and more).
		if size := markSize(len(state)); size >= n {
			t.Errorf("%s: counted %d bytes, encoded alone %d", d.ID, size, n)
		}
		seen[d.Kind]++
	}
	for _, k := range []string{telemetry.KindBin, telemetry.KindTruck, telemetry.KindToilet, telemetry.KindSweeper} {
		if seen[k] == 0 {
			t.Errorf("no %s in the scenario", k)
		}
	}
}

// discard is a Sink that keeps nothing.
type discard struct{}

func (discard) Raise(context.Context, Violation) error { return nil }
