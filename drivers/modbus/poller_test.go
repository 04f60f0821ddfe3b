package modbus_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/internal/testenv"
	"github.com/sanigate/sanigate/simulators/modbussim"
	"github.com/sanigate/sanigate/telemetry"
)

// collector is an Emitter that keeps every reading; refuse makes it answer
// ErrBackpressure for that many calls first.
type collector struct {
	mu     sync.Mutex
	rs     []telemetry.Reading
	refuse int
	calls  int
}

func (c *collector) Emit(rs []telemetry.Reading) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.refuse > 0 {
		c.refuse--
		return fmt.Errorf("spool at quota: %w", modbus.ErrBackpressure)
	}
	c.rs = append(c.rs, rs...)
	return nil
}

func (c *collector) readings(device string) []telemetry.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []telemetry.Reading
	for _, r := range c.rs {
		if r.Device == device {
			out = append(out, r)
		}
	}
	return out
}

func startSim(t testing.TB, profile string, opts modbussim.Options) *modbussim.Sim {
	t.Helper()
	s, err := modbussim.Start(context.Background(), profile, "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func parse(t testing.TB, text string) *modbus.Config {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatal(err)
	}
	cfg, err := modbus.ParseConfig("test.yaml", &n)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// run starts a poller on cfg and stops it at the end of the test.
func run(t testing.TB, cfg *modbus.Config, em modbus.Emitter) (*modbus.Poller, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return runWith(t, cfg, em, modbus.Options{Registerer: reg}), reg
}

// runWith starts a poller on cfg with opts and stops it at the end of the
// test.
func runWith(t testing.TB, cfg *modbus.Config, em modbus.Emitter, opts modbus.Options) *modbus.Poller {
	t.Helper()
	p, err := modbus.NewPoller(cfg, em, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	t.Cleanup(func() {
		p.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return p
}

// metric returns the value of a counter or gauge with the given labels
// (device, and kind or result), or the count of a histogram.
func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return total
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestProfilesAgainstSimulator polls a simulator of every shipped profile over
// each TCP transport and checks that every field decodes to what the
// simulated device holds.
func TestProfilesAgainstSimulator(t *testing.T) {
	for _, profile := range modbus.ProfileNames() {
		for _, transport := range []modbus.Transport{modbus.TCP, modbus.RTUOverTCP} {
			t.Run(profile+"/"+string(transport), func(t *testing.T) {
				t.Parallel()
				sim := startSim(t, profile, modbussim.Options{Seed: 7, Step: -1, RTUOverTCP: transport == modbus.RTUOverTCP, UnitID: 5})
				for range 20 {
					sim.Step()
				}
				cfg := parse(t, fmt.Sprintf("devices:\n- {id: dev, profile: %s, transport: %s, address: %q, unit_id: 5, poll_interval: 100ms, timeout: 50ms}\n",
					profile, transport, sim.Addr()))
				em := &collector{}
				run(t, cfg, em)
				testenv.Eventually(t, 30*time.Second, "a reading arrives", func() bool { return len(em.readings("dev")) > 0 })
				rd := em.readings("dev")[0]
				pr, _ := modbus.LoadProfile(profile)
				if rd.Kind != pr.Kind || rd.Event != pr.Event {
					t.Errorf("kind/event: got %s/%s, want %s/%s", rd.Kind, rd.Event, pr.Kind, pr.Event)
				}
				want := sim.Values()
				if len(rd.Fields) != len(want) {
					t.Errorf("got %d fields, want %d", len(rd.Fields), len(want))
				}
				for name, w := range want {
					g, ok := rd.Get(name)
					switch {
					case !ok:
						t.Errorf("%s: missing", name)
					case g.Type != w.Type || g.Str != w.Str || !near(g.Num, w.Num):
						t.Errorf("%s: got %+v, want %+v", name, g, w)
					}
				}
			})
		}
	}
}

// TestDecodeGolden reads testdata/decode/registers.txt into a bare simulator,
// polls the device of testdata/decode/sanigate.yaml once over the network and
// compares every decoded field with testdata/decode/want.txt.
func TestDecodeGolden(t *testing.T) {
	dir := filepath.Join("testdata", "decode")
	sim := startSim(t, "", modbussim.Options{})
	raw, err := os.ReadFile(filepath.Join(dir, "registers.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		var fn string
		var addr uint16
		var rest string
		parts := strings.SplitN(line, ":", 2)
		if _, err := fmt.Sscanf(parts[0], "%s %d", &fn, &addr); err != nil || len(parts) != 2 {
			t.Fatalf("registers.txt:%d: %q", i+1, line)
		}
		rest = parts[1]
		var vals []uint16
		var bits []bool
		for _, f := range strings.Fields(rest) {
			var v uint16
			if _, err := fmt.Sscanf(f, "%x", &v); err != nil {
				t.Fatalf("registers.txt:%d: %q", i+1, f)
			}
			vals = append(vals, v)
			bits = append(bits, v != 0)
		}
		if f := modbus.Function(fn); f.Bits() {
			sim.SetBits(f, addr, bits...)
		} else {
			sim.SetRegisters(f, addr, vals...)
		}
	}
	text, err := os.ReadFile(filepath.Join(dir, "sanigate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, strings.ReplaceAll(string(text), "SIM", sim.Addr()))
	p, err := modbus.NewPoller(cfg, &collector{}, modbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseDevices()
	rd, result := p.PollDevice(context.Background(), 0)
	if result != "ok" {
		t.Fatalf("poll: %s", result)
	}
	var lines []string
	for _, f := range rd.Fields {
		v := fmt.Sprintf("%v", f.Num)
		switch f.Type {
		case telemetry.String:
			v = fmt.Sprintf("%q", f.Str)
		case telemetry.Bool:
			v = fmt.Sprint(f.Num != 0)
		case telemetry.Float:
			v = fmt.Sprintf("%.6g", f.Num)
		case telemetry.Int:
			v = fmt.Sprint(int64(f.Num))
		}
		lines = append(lines, fmt.Sprintf("%-16s %-6s %s", f.Name, [...]string{"?", "float", "int", "bool", "string"}[f.Type], v))
	}
	sort.Strings(lines)
	modbus.Golden(t, filepath.Join(dir, "want.txt"), strings.Join(lines, "\n")+"\n")
}

// TestRequestMerging counts requests at the device: neighbouring values are
// read together, a gap splits a request unless max_gap spans it, and the
// request size limit splits a block.
func TestRequestMerging(t *testing.T) {
	const regs = `
    registers:
      - {field: a, function: holding, address: 0, type: UINT16}
      - {field: b, function: holding, address: 1, type: FLOAT32-IEEE}
      - {field: c, function: holding, address: 3, type: UINT64}
      - {field: d, function: holding, address: 10, type: INT16}
      - {field: e, function: holding, address: 200, type: UINT16}
      - {field: f, function: input, address: 0, type: UINT16}
      - {field: g, function: input, address: 1, type: UINT16}
      - {field: h, function: coil, address: 0}
      - {field: i, function: coil, address: 1999}
      - {field: j, function: coil, address: 2000}
`
	tests := []struct {
		name     string
		settings string
		perPoll  map[byte]int // function code -> requests per poll
	}{
		{"no gap", "", map[byte]int{1: 2, 3: 3, 4: 1}},
		{"gap of 3 spanned", "max_gap: 3", map[byte]int{1: 2, 3: 2, 4: 1}},
		{"small requests", "max_request_registers: 4\n    max_gap: 3", map[byte]int{1: 2, 3: 4, 4: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, "", modbussim.Options{})
			cfg := parse(t, fmt.Sprintf("devices:\n  - id: dev\n    kind: toilet\n    address: %s\n    %s\n%s", sim.Addr(), tc.settings, regs))
			p, err := modbus.NewPoller(cfg, &collector{}, modbus.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.CloseDevices()
			for range 3 {
				if _, res := p.PollDevice(context.Background(), 0); res != "ok" {
					t.Fatalf("poll: %s", res)
				}
			}
			for fc, n := range tc.perPoll {
				if got := sim.RequestsFor(fc); got != 3*n {
					t.Errorf("function %d: got %d requests in 3 polls, want %d", fc, got, 3*n)
				}
			}
		})
	}
}

func deviceYAML(id, addr, transport, extra string) string {
	return fmt.Sprintf("  - {id: %s, kind: toilet, transport: %s, address: %q, %s registers: [{field: v, function: holding, address: 0, type: UINT16}]}\n",
		id, transport, addr, extra)
}

// TestTimeoutRecovery makes replies late, then fast again with a new value:
// after the timeouts, no reading may carry the value of a late reply, which is
// what a connection left one transaction behind would deliver.
func TestTimeoutRecovery(t *testing.T) {
	for _, transport := range []modbus.Transport{modbus.TCP, modbus.RTUOverTCP} {
		t.Run(string(transport), func(t *testing.T) {
			t.Parallel()
			sim := startSim(t, "", modbussim.Options{RTUOverTCP: transport == modbus.RTUOverTCP})
			sim.SetRegisters(modbus.Holding, 0, 1)
			cfg := parse(t, "devices:\n"+deviceYAML("dev", sim.Addr(), string(transport), "poll_interval: 100ms, timeout: 60ms, backoff_min: 10ms, backoff_max: 20ms,"))
			em := &collector{}
			_, reg := run(t, cfg, em)
			testenv.Eventually(t, 30*time.Second, "a first reading", func() bool { return len(em.readings("dev")) > 0 })
			sim.SetDelay(300 * time.Millisecond)
			testenv.Eventually(t, 30*time.Second, "two timeouts", func() bool { return metric(t, reg, "sanigate_modbus_errors_total", "kind", "timeout") >= 2 })
			n := len(em.readings("dev"))
			sim.SetRegisters(modbus.Holding, 0, 2)
			sim.SetDelay(0)
			testenv.Eventually(t, 30*time.Second, "five readings after recovery", func() bool { return len(em.readings("dev")) >= n+5 })
			for i, r := range em.readings("dev")[n:] {
				if v, _ := r.Num("v"); v != 2 {
					t.Errorf("reading %d after recovery: got %v, want 2 (a late reply was read as an answer)", i, v)
				}
			}
		})
	}
}

// TestWrongTransactionID: a reply with another transaction's id is counted as
// a mismatch and the connection is redialled; later readings are right.
func TestWrongTransactionID(t *testing.T) {
	sim := startSim(t, "", modbussim.Options{})
	sim.SetRegisters(modbus.Holding, 0, 41)
	cfg := parse(t, "devices:\n"+deviceYAML("dev", sim.Addr(), "tcp", "poll_interval: 100ms, timeout: 60ms, backoff_min: 10ms,"))
	em := &collector{}
	_, reg := run(t, cfg, em)
	testenv.Eventually(t, 30*time.Second, "a first reading", func() bool { return len(em.readings("dev")) > 0 })
	sim.WrongTransactionID(1)
	testenv.Eventually(t, 30*time.Second, "a mismatch", func() bool { return metric(t, reg, "sanigate_modbus_errors_total", "kind", "mismatch") == 1 })
	n := len(em.readings("dev"))
	sim.SetRegisters(modbus.Holding, 0, 42)
	testenv.Eventually(t, 30*time.Second, "readings after the mismatch", func() bool { return len(em.readings("dev")) >= n+3 })
	for _, r := range em.readings("dev")[n:] {
		if v, _ := r.Num("v"); v != 42 {
			t.Errorf("after mismatch: got %v, want 42", v)
		}
	}
	if got := sim.Connections(); got < 2 {
		t.Errorf("connections: got %d, want a redial (>= 2)", got)
	}
}

// TestBusyRetried: "server device busy" is retried on the same connection; a
// device that stays busy gives up the poll without redialling.
func TestBusyRetried(t *testing.T) {
	sim := startSim(t, "", modbussim.Options{})
	sim.SetRegisters(modbus.Holding, 0, 7)
	cfg := parse(t, "devices:\n"+deviceYAML("dev", sim.Addr(), "tcp", "busy_retries: 2, busy_wait: 1ms,"))
	p, err := modbus.NewPoller(cfg, &collector{}, modbus.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseDevices()
	sim.FailBusy(2)
	rd, res := p.PollDevice(context.Background(), 0)
	if res != "ok" || rd == nil {
		t.Fatalf("two busy replies then an answer: got %s, want ok", res)
	}
	if got := sim.Requests(); got != 3 {
		t.Errorf("requests: got %d, want 3", got)
	}
	sim.FailBusy(3)
	if rd, res := p.PollDevice(context.Background(), 0); res != "failed" || rd != nil {
		t.Errorf("busy past the retries: got %s, want failed", res)
	}
	if rd, res := p.PollDevice(context.Background(), 0); res != "ok" || rd == nil {
		t.Errorf("after busy: got %s, want ok", res)
	}
	if got := sim.Connections(); got != 1 {
		t.Errorf("connections: got %d, want 1 (busy needs no redial)", got)
	}
}

// TestDroppedConnection: a connection the device dropped is redialled within
// the same poll; a device that is down is redialled with growing pauses, and
// polling resumes when it is back.
func TestDroppedConnection(t *testing.T) {
	sim := startSim(t, "", modbussim.Options{})
	sim.SetRegisters(modbus.Holding, 0, 3)
	cfg := parse(t, "devices:\n"+deviceYAML("dev", sim.Addr(), "tcp", "poll_interval: 100ms, timeout: 60ms, backoff_min: 2s, backoff_max: 4s,"))
	p, err := modbus.NewPoller(cfg, &collector{}, modbus.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseDevices()
	ctx := context.Background()
	if _, res := p.PollDevice(ctx, 0); res != "ok" {
		t.Fatalf("first poll: %s", res)
	}
	sim.DropConnections()
	if _, res := p.PollDevice(ctx, 0); res != "ok" {
		t.Fatalf("poll after a dropped connection: got %s, want ok on a fresh one", res)
	}
	sim.SetDown(true)
	if _, res := p.PollDevice(ctx, 0); res != "failed" {
		t.Fatalf("device down: got %s, want failed", res)
	}
	// Right after a failure the poller waits before redialling.
	for range 3 {
		if _, res := p.PollDevice(ctx, 0); res != "backoff" {
			t.Fatalf("during backoff: got %s, want backoff", res)
		}
	}
	sim.SetDown(false)
	testenv.Eventually(t, 30*time.Second, "polling resumes", func() bool {
		_, res := p.PollDevice(ctx, 0)
		return res == "ok"
	})
}

// TestDeadDeviceDoesNotDelayOthers: while a request to a silent device is in
// flight (its timeout is far longer than the test), a healthy device goes on
// completing polls.
func TestDeadDeviceDoesNotDelayOthers(t *testing.T) {
	dead := startSim(t, "", modbussim.Options{})
	dead.SetSilent(true)
	live := startSim(t, "", modbussim.Options{})
	cfg := parse(t, "devices:\n"+
		deviceYAML("dead", dead.Addr(), "tcp", "poll_interval: 100ms, timeout: 90ms,")+
		deviceYAML("live", live.Addr(), "tcp", "poll_interval: 100ms, timeout: 90ms,"))
	// The dead device's timeout is raised past the config's check so that its
	// first request stays in flight for the whole test.
	cfg.Devices[0].Timeout = time.Hour
	em := &collector{}
	_, reg := run(t, cfg, em)
	testenv.Eventually(t, 30*time.Second, "the dead device is asked", func() bool { return dead.Requests() > 0 })
	n := len(em.readings("live"))
	testenv.Eventually(t, 30*time.Second, "the live device polls 20 times", func() bool { return len(em.readings("live")) >= n+20 })
	if got := metric(t, reg, "sanigate_modbus_polls_total", "device", "dead"); got != 0 {
		t.Errorf("dead device: %v polls finished, want its first still in flight", got)
	}
	if got := len(em.readings("dead")); got != 0 {
		t.Errorf("dead device: got %d readings", got)
	}
}

// TestBackpressure: while the emitter refuses, only the newest reading is
// kept; it is delivered once the emitter accepts again.
func TestBackpressure(t *testing.T) {
	sim := startSim(t, "", modbussim.Options{})
	cfg := parse(t, "devices:\n"+deviceYAML("dev", sim.Addr(), "tcp", "poll_interval: 100ms, timeout: 60ms,"))
	em := &collector{refuse: 4}
	_, reg := run(t, cfg, em)
	testenv.Eventually(t, 30*time.Second, "a reading gets through", func() bool { return len(em.readings("dev")) > 0 })
	if got := metric(t, reg, "sanigate_modbus_emit_errors_total"); got != 4 {
		t.Errorf("emit errors: got %v, want 4", got)
	}
	// Each refused reading was replaced by the next poll's.
	if got := metric(t, reg, "sanigate_modbus_readings_dropped_total"); got != 4 {
		t.Errorf("dropped: got %v, want 4", got)
	}
	rs := em.readings("dev")
	if !slices.IsSortedFunc(rs, func(a, b telemetry.Reading) int { return a.Time.Compare(b.Time) }) {
		t.Error("readings out of order")
	}
}

// TestEmitOnChange: a weighbridge gives one weighing event per weighing, not
// one per poll.
func TestEmitOnChange(t *testing.T) {
	sim := startSim(t, "weighbridge", modbussim.Options{Seed: 1, Step: -1})
	cfg := parse(t, fmt.Sprintf("devices:\n- {id: wb, profile: weighbridge, address: %q, site: plant-east, poll_interval: 100ms, timeout: 50ms}\n", sim.Addr()))
	em := &collector{}
	_, reg := run(t, cfg, em)
	testenv.Eventually(t, 30*time.Second, "five polls", func() bool { return metric(t, reg, "sanigate_modbus_polls_total", "result", "ok") >= 5 })
	if got := len(em.readings("wb")); got != 1 {
		t.Fatalf("without a new weighing: got %d readings, want 1", got)
	}
	seq := sim.Values()["weighing_seq"].Num
	for sim.Values()["weighing_seq"].Num == seq {
		sim.Step()
	}
	testenv.Eventually(t, 30*time.Second, "the second weighing", func() bool { return len(em.readings("wb")) == 2 })
	rd := em.readings("wb")[1]
	if rd.Event != "weighing" || rd.Kind != "weighbridge" || rd.Site != "plant-east" || rd.Measurement() != telemetry.MeasurementEvent {
		t.Errorf("got event %q kind %q site %q", rd.Event, rd.Kind, rd.Site)
	}
	if id, _ := rd.Get("truck_id"); id.Str != sim.Values()["truck_id"].Str {
		t.Errorf("truck_id: got %q, want %q", id.Str, sim.Values()["truck_id"].Str)
	}
}

// TestLastSuccess feeds the offline signal: it moves while the device
// answers and stays put while it does not.
func TestLastSuccess(t *testing.T) {
	sim := startSim(t, "", modbussim.Options{})
	cfg := parse(t, "devices:\n"+deviceYAML("dev", sim.Addr(), "tcp", "poll_interval: 100ms, timeout: 60ms,"))
	em := &collector{}
	p, reg := run(t, cfg, em)
	if !p.LastSuccess("nope").IsZero() {
		t.Error("unknown device has a last success")
	}
	testenv.Eventually(t, 30*time.Second, "a success", func() bool { return !p.LastSuccess("dev").IsZero() })
	sim.SetSilent(true)
	testenv.Eventually(t, 30*time.Second, "a timeout", func() bool { return metric(t, reg, "sanigate_modbus_errors_total", "kind", "timeout") >= 1 })
	last := p.LastSuccess("dev")
	testenv.Eventually(t, 30*time.Second, "another failed poll", func() bool { return metric(t, reg, "sanigate_modbus_errors_total", "kind", "timeout") >= 2 })
	if got := p.LastSuccess("dev"); !got.Equal(last) {
		t.Errorf("last success moved while silent: %v -> %v", last, got)
	}
	if g := metric(t, reg, "sanigate_modbus_last_success_timestamp_seconds", "device", "dev"); !near(g, float64(last.UnixNano())/1e9) {
		t.Errorf("gauge: got %v, want %v", g, float64(last.UnixNano())/1e9)
	}
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
