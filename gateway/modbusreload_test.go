package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/modbussim"
	"github.com/sanigate/sanigate/telemetry"
)

func startModbusSim(t *testing.T, profile string, seed uint64) *modbussim.Sim {
	t.Helper()
	s, err := modbussim.Start(context.Background(), profile, "127.0.0.1:0", modbussim.Options{Seed: seed, Step: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// readConfig returns the running gateway's configuration file.
func (h *harness) readConfig() string {
	h.t.Helper()
	b, err := os.ReadFile(h.cfg.File)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

// modbusSeries counts the series of the Modbus poller's metrics for device.
func (h *harness) modbusSeries(device string) int {
	h.t.Helper()
	n := 0
	for name, mf := range h.metrics() {
		if !strings.HasPrefix(name, "sanigate_modbus_") {
			continue
		}
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if lp.GetName() == "device" && lp.GetValue() == device {
					n++
				}
			}
		}
	}
	return n
}

// TestReloadModbus: the modbus section changes with a reload, without a
// restart. A gateway started with no polled device starts polling a toilet
// controller added to the file (its readings reach InfluxDB); a broken
// modbus section is refused whole, every problem named, and polling goes on
// as it was; a weighbridge added next is polled while the toilet keeps its
// connection; a device taken out of the section is no longer polled. No
// report names modbus as needing a restart.
func TestReloadModbus(t *testing.T) {
	toilet := startModbusSim(t, "toilet_controller", 1)
	if err := toilet.SetField("nh3_mgm3", telemetry.Field{Name: "nh3_mgm3", Type: telemetry.Float, Num: 0.75}); err != nil {
		t.Fatal(err)
	}
	bridge := startModbusSim(t, "weighbridge", 2)
	h := newHarnessYAML(t, "", reloadSections())
	if h.g.Poller() != nil {
		t.Fatal("a poller runs with no Modbus device")
	}
	ctx := context.Background()
	reload := func(what string) ReloadReport {
		t.Helper()
		rep, err := h.g.Reload(ctx)
		if err != nil || !rep.Applied || len(rep.NeedsRestart) != 0 {
			t.Fatalf("%s: %+v, %v; want applied, nothing needing a restart", what, rep, err)
		}
		return rep
	}
	toiletDev := "  - {id: toilet-m01, kind: toilet, class: 1, contractor: greenclean, district: north, transport: modbus}\n"
	toiletPoll := fmt.Sprintf("    - {id: toilet-m01, transport: tcp, address: %q, poll_interval: 200ms, timeout: 150ms, profile: toilet_controller}\n", toilet.Addr())

	// Added: registered under devices: and polled under modbus:.
	h.rewriteConfig(func(s string) string {
		return strings.Replace(s, "devices:\n", "devices:\n"+toiletDev, 1) + "modbus:\n  devices:\n" + toiletPoll
	})
	if rep := reload("reload adding a polled toilet"); !slices.Equal(rep.Added, []string{"toilet-m01"}) ||
		rep.Modbus == nil || !slices.Equal(rep.Modbus.Added, []string{"toilet-m01"}) {
		t.Fatalf("added: got %v, modbus %+v; want toilet-m01 in both", rep.Added, rep.Modbus)
	}
	if h.g.Poller() == nil {
		t.Fatal("no poller after a reload that added a Modbus device")
	}
	testenv.Eventually(t, 15*time.Second, "the polled toilet's readings in InfluxDB", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`) >= 3
	})

	// Broken: an unregistered device, a field its kind lacks, a poll
	// interval too short. Nothing of it is applied.
	good := h.readConfig()
	h.rewriteConfig(func(s string) string {
		return s + `    - {id: ghost-1, kind: toilet, address: "127.0.0.1:1", poll_interval: 10ms, timeout: 5ms, registers: [{field: paper_pcnt, function: holding, address: 0, type: UINT16}]}` + "\n"
	})
	rep, err := h.g.Reload(ctx)
	if !errors.Is(err, ErrReloadRefused) || rep.Applied {
		t.Fatalf("reload of a broken modbus section: %+v, %v; want ErrReloadRefused", rep, err)
	}
	for _, want := range []string{`modbus.devices[1].id: "ghost-1" is not registered`, `"paper_pcnt" is not a field of a toilet`, "modbus.devices[1].poll_interval"} {
		if !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("problems %q do not name %s", rep.Problems, want)
		}
	}
	n := h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`)
	testenv.Eventually(t, 15*time.Second, "the toilet still polled after the refused reload", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`) >= n+3
	})
	if got := toilet.Connections(); got != 1 {
		t.Errorf("toilet: %d connections after the refused reload, want 1", got)
	}

	// A weighbridge added; the toilet, unchanged, keeps its connection.
	h.rewriteConfig(func(string) string {
		return strings.Replace(good, "devices:\n", "devices:\n  - {id: weighbridge-01, kind: weighbridge, contractor: greenclean, district: south, transport: modbus}\n", 1) +
			fmt.Sprintf("    - {id: weighbridge-01, transport: tcp, address: %q, poll_interval: 200ms, timeout: 150ms, profile: weighbridge, site: kw-plant}\n", bridge.Addr())
	})
	if rep := reload("reload adding a weighbridge"); rep.Modbus == nil || !slices.Equal(rep.Modbus.Added, []string{"weighbridge-01"}) ||
		len(rep.Modbus.Removed)+len(rep.Modbus.Changed) != 0 {
		t.Fatalf("modbus change %+v, want the weighbridge added and nothing else", rep.Modbus)
	}
	testenv.Eventually(t, 15*time.Second, "a weighing event in InfluxDB", func() bool {
		return len(h.influx.Rows(t, `SELECT * FROM "forever"."event" WHERE "event"='weighing' AND "device"='weighbridge-01'`)) >= 1
	})
	n = h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`)
	testenv.Eventually(t, 15*time.Second, "the toilet polled on", func() bool {
		return h.influx.Count(t, "toilet", "nh3_mgm3", `"device"='toilet-m01'`) >= n+3
	})
	if got := toilet.Connections(); got != 1 {
		t.Errorf("toilet: %d connections after the weighbridge was added, want 1 (its session kept)", got)
	}

	// The toilet taken out of the section (it stays registered): its
	// connection closes and its series go.
	h.rewriteConfig(func(s string) string { return strings.Replace(s, toiletPoll, "", 1) })
	if rep := reload("reload removing the toilet from polling"); rep.Modbus == nil || !slices.Equal(rep.Modbus.Removed, []string{"toilet-m01"}) {
		t.Fatalf("modbus change %+v, want the toilet removed", rep.Modbus)
	}
	testenv.Eventually(t, 10*time.Second, "the toilet's connection closed", func() bool { return toilet.Open() == 0 })
	if !h.g.Poller().LastSuccess("toilet-m01").IsZero() {
		t.Error("the toilet still has a last success")
	}
	if got := h.modbusSeries("toilet-m01"); got != 0 {
		t.Errorf("toilet: %d sanigate_modbus_* series still exported", got)
	}
	if got := h.modbusSeries("weighbridge-01"); got == 0 {
		t.Error("weighbridge: no sanigate_modbus_* series")
	}
	requests := toilet.Requests()
	polls := h.metric("sanigate_modbus_polls_total", map[string]string{"device": "weighbridge-01"})
	testenv.Eventually(t, 10*time.Second, "the weighbridge polled on", func() bool {
		return h.metric("sanigate_modbus_polls_total", map[string]string{"device": "weighbridge-01"}) >= polls+3
	})
	if got := toilet.Requests(); got != requests {
		t.Errorf("toilet: %d requests after it left the modbus section", got-requests)
	}
	if got := bridge.Connections(); got != 1 {
		t.Errorf("weighbridge: %d connections, want 1", got)
	}
}
