package modbus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/modbussim"
)

// series counts the series of the poller's metrics that carry device.
func series(t testing.TB, reg *prometheus.Registry, device string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "device" && l.GetValue() == device {
					n++
				}
			}
		}
	}
	return n
}

func valueOf(t testing.TB, em *collector, device string) []float64 {
	t.Helper()
	var out []float64
	for _, r := range em.readings(device) {
		v, _ := r.Num("v")
		out = append(out, v)
	}
	return out
}

// Update while Run runs: an added device is polled, a removed one stops (its
// connection closed, no request nor reading after, its series deleted), a
// changed one polls with its new registers and interval on a new
// connection, and an unchanged one, moved in the file, keeps its loop, its
// connection and its last success. LastSuccess is read throughout.
func TestUpdateWhileRunning(t *testing.T) {
	keep := startSim(t, "", modbussim.Options{})
	gone := startSim(t, "", modbussim.Options{})
	change := startSim(t, "", modbussim.Options{})
	added := startSim(t, "", modbussim.Options{})
	for i, s := range []*modbussim.Sim{keep, gone, change, added} {
		s.SetRegisters(modbus.Holding, 0, uint16(10+i))
	}
	change.SetRegisters(modbus.Holding, 5, 77)

	fast := "poll_interval: 100ms, timeout: 80ms,"
	before := parse(t, "devices:\n"+
		deviceYAML("keep", keep.Addr(), "tcp", fast)+
		deviceYAML("gone", gone.Addr(), "tcp", fast)+
		deviceYAML("change", change.Addr(), "tcp", fast))
	em := &collector{}
	watch := &loopLog{}
	reg := prometheus.NewRegistry()
	p := runWith(t, before, em, modbus.Options{Registerer: reg, Loops: watch})
	// Readers of the offline signal run concurrently with the update.
	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				for _, id := range []string{"keep", "gone", "change", "added"} {
					p.LastSuccess(id)
				}
			}
		})
	}
	defer func() { close(stopReaders); readers.Wait() }()

	testenv.Eventually(t, 30*time.Second, "readings of keep, gone and change", func() bool {
		return len(em.readings("keep")) >= 3 && len(em.readings("gone")) >= 3 && len(em.readings("change")) >= 3
	})
	keepLast := p.LastSuccess("keep")
	if keepLast.IsZero() || keep.Connections() != 1 || change.Connections() != 1 {
		t.Fatalf("before: keep last %v, connections keep %d change %d", keepLast, keep.Connections(), change.Connections())
	}

	// keep moves below the new device (its lines shift); change reads
	// another address, slower.
	after := parse(t, "devices:\n"+
		deviceYAML("added", added.Addr(), "tcp", fast)+
		deviceYAML("keep", keep.Addr(), "tcp", fast)+
		fmt.Sprintf("  - {id: change, kind: toilet, transport: tcp, address: %q, poll_interval: 1s, timeout: 80ms, registers: [{field: v, function: holding, address: 5, type: UINT16}]}\n", change.Addr()))
	a, r, c := p.Update(after)
	if !slices.Equal(a, []string{"added"}) || !slices.Equal(r, []string{"gone"}) || !slices.Equal(c, []string{"change"}) {
		t.Fatalf("Update: added %v removed %v changed %v; want [added] [gone] [change]", a, r, c)
	}

	// Removed: the loop has stopped, so its count is final.
	goneReadings, goneRequests := len(em.readings("gone")), gone.Requests()
	testenv.Eventually(t, 10*time.Second, "gone's connection closed", func() bool { return gone.Open() == 0 })
	if n := series(t, reg, "gone"); n != 0 {
		t.Errorf("gone: %d metric series left, want none", n)
	}
	if !p.LastSuccess("gone").IsZero() {
		t.Error("gone still has a last success")
	}

	// Added and changed poll with their new configuration.
	testenv.Eventually(t, 30*time.Second, "readings of added and changed", func() bool {
		return len(em.readings("added")) >= 3 && slices.Contains(valueOf(t, em, "change"), 77)
	})
	if n := series(t, reg, "added"); n == 0 {
		t.Error("added: no metric series")
	}
	vs := valueOf(t, em, "change")
	first := slices.Index(vs, 77)
	for _, v := range vs[first:] {
		if v != 77 {
			t.Fatalf("change after its first new reading: got %v, want only 77", vs[first:])
		}
	}
	if got := change.Connections(); got != 2 {
		t.Errorf("change: %d connections, want 2 (the old one closed, a new one for the new config)", got)
	}
	testenv.Eventually(t, 10*time.Second, "change's old connection closed", func() bool { return change.Open() == 1 })
	// At 1s, a window of 1.5s holds at most two polls; the old 100ms would give about 15.
	n := len(em.readings("change"))
	time.Sleep(1500 * time.Millisecond)
	if got := len(em.readings("change")) - n; got > 2 {
		t.Errorf("change: %d readings in 1.5s at a 1s poll interval", got)
	}

	// Unchanged: same loop, same connection, polling on.
	k := len(em.readings("keep"))
	testenv.Eventually(t, 10*time.Second, "keep polls on", func() bool { return len(em.readings("keep")) >= k+3 })
	if got := keep.Connections(); got != 1 {
		t.Errorf("keep: %d connections, want 1 (its session kept)", got)
	}
	if got := metric(t, reg, "sanigate_modbus_dials_total", "device", "keep"); got != 1 {
		t.Errorf("keep: %v dials, want 1", got)
	}
	if _, running := watch.snapshot(); running["keep"] != 1 || running["change"] != 2 || running["added"] != 1 {
		t.Errorf("loop starts: got %v, want keep 1, change 2, added 1", running)
	}
	if got := p.LastSuccess("keep"); got.Before(keepLast) {
		t.Errorf("keep's last success went back: %v -> %v", keepLast, got)
	}

	// Nothing more came from the removed device.
	if got := len(em.readings("gone")); got != goneReadings {
		t.Errorf("gone: %d readings after Update returned", got-goneReadings)
	}
	if got := gone.Requests(); got != goneRequests {
		t.Errorf("gone: %d requests after Update returned", got-goneRequests)
	}
	if got := gone.Connections(); got != 1 {
		t.Errorf("gone: %d connections, want 1 (no redial)", got)
	}
}

// Update on a poller that does not run changes the set the next Run polls;
// a running poller left with no device keeps running and polls devices
// added later.
func TestUpdateWhileStopped(t *testing.T) {
	one := startSim(t, "", modbussim.Options{})
	two := startSim(t, "", modbussim.Options{})
	fast := "poll_interval: 100ms, timeout: 80ms,"
	em := &collector{}
	reg := prometheus.NewRegistry()
	p, err := modbus.NewPoller(parse(t, "devices:\n"+deviceYAML("one", one.Addr(), "tcp", fast)), em, modbus.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if a, r, _ := p.Update(parse(t, "devices:\n"+deviceYAML("two", two.Addr(), "tcp", fast))); !slices.Equal(a, []string{"two"}) || !slices.Equal(r, []string{"one"}) {
		t.Fatalf("Update before Run: added %v removed %v", a, r)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	testenv.Eventually(t, 30*time.Second, "two polled", func() bool { return len(em.readings("two")) >= 2 })
	if one.Connections() != 0 || len(em.readings("one")) != 0 {
		t.Fatalf("one was polled after it was removed: %d connections", one.Connections())
	}

	if _, r, _ := p.Update(&modbus.Config{}); !slices.Equal(r, []string{"two"}) {
		t.Fatalf("Update to no device: removed %v", r)
	}
	testenv.Eventually(t, 10*time.Second, "two's connection closed", func() bool { return two.Open() == 0 })
	select {
	case err := <-done:
		t.Fatalf("Run returned with no device left: %v", err)
	default:
	}
	if a, _, _ := p.Update(parse(t, "devices:\n"+deviceYAML("one", one.Addr(), "tcp", fast))); !slices.Equal(a, []string{"one"}) {
		t.Fatalf("Update adding one: added %v", a)
	}
	testenv.Eventually(t, 30*time.Second, "one polled", func() bool { return len(em.readings("one")) >= 2 })
	p.Close()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "one's connection closed by Close", func() bool { return one.Open() == 0 })
	// After Close an Update is kept for nothing, and runs nothing.
	p.Update(parse(t, "devices:\n"+deviceYAML("two", two.Addr(), "tcp", fast)))
	time.Sleep(300 * time.Millisecond)
	if got := two.Connections(); got != 1 {
		t.Errorf("two: %d connections after an Update on a closed poller, want 1", got)
	}
}

// A changed weighbridge (its site moved) does not emit its last weighing
// again: the emit_on_change reference survives the change; the next
// weighing carries the new site.
func TestUpdateKeepsEmitOnChange(t *testing.T) {
	sim := startSim(t, "weighbridge", modbussim.Options{Seed: 1, Step: -1})
	wb := func(site string) *modbus.Config {
		return parse(t, fmt.Sprintf("devices:\n- {id: wb, profile: weighbridge, address: %q, site: %s, poll_interval: 100ms, timeout: 50ms}\n", sim.Addr(), site))
	}
	em := &collector{}
	p, reg := run(t, wb("plant-east"), em)
	testenv.Eventually(t, 30*time.Second, "the first weighing", func() bool { return len(em.readings("wb")) == 1 })
	if _, _, c := p.Update(wb("plant-west")); !slices.Equal(c, []string{"wb"}) {
		t.Fatalf("changed: got %v, want [wb]", c)
	}
	polls := metric(t, reg, "sanigate_modbus_polls_total", "device", "wb", "result", "ok")
	testenv.Eventually(t, 30*time.Second, "five polls on the new config", func() bool {
		return metric(t, reg, "sanigate_modbus_polls_total", "device", "wb", "result", "ok") >= polls+5
	})
	if got := len(em.readings("wb")); got != 1 {
		t.Fatalf("after the change, without a new weighing: got %d readings, want 1", got)
	}
	seq := sim.Values()["weighing_seq"].Num
	for sim.Values()["weighing_seq"].Num == seq {
		sim.Step()
	}
	testenv.Eventually(t, 30*time.Second, "the second weighing", func() bool { return len(em.readings("wb")) == 2 })
	if rd := em.readings("wb")[1]; rd.Site != "plant-west" {
		t.Errorf("second weighing: site %q, want plant-west", rd.Site)
	}
}
