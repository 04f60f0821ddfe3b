package simulators

import (
	"bytes"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

func demoConfig(t *testing.T) *fleet.Config {
	t.Helper()
	cfg, err := fleet.Load("../examples/demo/sanigate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Every message the simulated demo fleet sends over a simulated day passes
// the gateway's own codec, and the fleet behaves: bins are emptied, trucks
// pick up their route's bins and unload, the counters only grow.
func TestDemoFleetDay(t *testing.T) {
	cfg := demoConfig(t)
	devs := FleetFrom(cfg, 7)
	if len(devs) != DemoBins+DemoTrucks+DemoToilets+DemoSweepers {
		t.Fatalf("got %d devices", len(devs))
	}
	codec := telemetry.NewCodec()
	start := time.Now().Add(-24 * time.Hour)
	codec.Now = func() time.Time { return start.Add(25 * time.Hour) }
	kinds := map[string]string{}
	for _, d := range cfg.Devices {
		kinds[d.ID] = d.Kind
	}
	events := map[string]int{}
	readings := 0
	for step := 0; step < 24*60; step++ { // one day, a reading a minute
		now := start.Add(time.Duration(step) * time.Minute)
		for _, d := range devs {
			for _, m := range d.Step(now) {
				rs, err := codec.Decode(d.ID(), kinds[d.ID()], m.Channel == "events", m.Payload)
				if err != nil {
					t.Fatalf("%s at %s: %v\n%s", d.ID(), now, err, m.Payload)
				}
				for _, r := range rs {
					if r.Event != "" {
						events[r.Event]++
					} else {
						readings++
					}
				}
			}
		}
	}
	for _, ev := range []string{"emptied", "pickup", "unload_start", "unload_end"} {
		if events[ev] == 0 {
			t.Errorf("no %s event in a simulated day (events: %v)", ev, events)
		}
	}
	if want := len(devs) * 24 * 60; readings != want {
		t.Errorf("readings: got %d, want %d", readings, want)
	}
}

func TestDeterministicForASeed(t *testing.T) {
	cfg := demoConfig(t)
	run := func(seed uint64) []byte {
		var out bytes.Buffer
		now := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
		for _, d := range FleetFrom(cfg, seed)[:40] {
			for i := 0; i < 5; i++ {
				for _, m := range d.Step(now.Add(time.Duration(i) * time.Minute)) {
					out.Write(m.Payload)
				}
			}
		}
		return out.Bytes()
	}
	if !bytes.Equal(run(3), run(3)) {
		t.Error("the same seed gave different fleets")
	}
	if bytes.Equal(run(3), run(4)) {
		t.Error("different seeds gave the same fleet")
	}
}
