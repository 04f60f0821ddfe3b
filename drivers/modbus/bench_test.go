package modbus_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/simulators/modbussim"
	"github.com/sanigate/sanigate/telemetry"
)

// BenchmarkPoll polls one toilet controller simulator (two requests, eleven
// values) over a kept connection, for each TCP transport.
func BenchmarkPoll(b *testing.B) {
	for _, tr := range []modbus.Transport{modbus.TCP, modbus.RTUOverTCP} {
		b.Run(string(tr), func(b *testing.B) {
			sim := startSim(b, "toilet_controller", modbussim.Options{Seed: 1, Step: -1, RTUOverTCP: tr == modbus.RTUOverTCP})
			cfg := parse(b, fmt.Sprintf("devices:\n- {id: t, profile: toilet_controller, transport: %s, address: %q}\n", tr, sim.Addr()))
			p, err := modbus.NewPoller(cfg, &collector{}, modbus.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.CloseDevices()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, res := p.PollDevice(ctx, 0); res != "ok" {
					b.Fatal(res)
				}
			}
		})
	}
}

// TestFleetFigures polls many simulated devices every second and reports the
// poll-interval jitter, request rate and the gateway's CPU and memory. The
// simulators run in a child process so that only polling is measured. It runs
// only when SANIGATE_MODBUS_FLEET is set (devices:seconds, for example 500:30).
func TestFleetFigures(t *testing.T) {
	spec := os.Getenv("SANIGATE_MODBUS_FLEET")
	if spec == "" {
		t.Skip("set SANIGATE_MODBUS_FLEET=500:30 to measure a fleet of 500 devices for 30 s")
	}
	var n, secs int
	if _, err := fmt.Sscanf(spec, "%d:%d", &n, &secs); err != nil {
		t.Fatalf("SANIGATE_MODBUS_FLEET=%q: want devices:seconds", spec)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetSimulators$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("SANIGATE_MODBUS_FLEET_CHILD=%d", n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Wait() }()
	var b strings.Builder
	b.WriteString("devices:\n")
	sc := bufio.NewScanner(out)
	for i := 0; i < n && sc.Scan(); i++ {
		fmt.Fprintf(&b, "- {id: d%03d, profile: toilet_controller, address: %q, poll_interval: 1s, timeout: 500ms}\n", i, sc.Text())
	}
	cfg := parse(t, b.String())
	em := &intervals{last: map[string]time.Time{}}
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	p, reg := run(t, cfg, em)
	_ = p
	time.Sleep(time.Duration(secs) * time.Second)
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	reqs := metric(t, reg, "sanigate_modbus_requests_total")
	errs := metric(t, reg, "sanigate_modbus_errors_total")
	em.mu.Lock()
	d := slices.Clone(em.jitter)
	em.mu.Unlock()
	slices.Sort(d)
	q := func(f float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[int(f*float64(len(d)-1))]
	}
	t.Logf("%d devices, poll every 1s, %ds: %d intervals, jitter p50 %v p99 %v max %v; %.0f requests/s, %v errors; gateway CPU %.1f%% of one core, max RSS %d MiB",
		n, secs, len(d), q(.5), q(.99), q(1), reqs/float64(secs), errs, 100*cpu.Seconds()/float64(secs), after.Maxrss/1024)
}

// intervals records, per device, how far each interval between readings is
// from the poll interval.
type intervals struct {
	mu     sync.Mutex
	last   map[string]time.Time
	jitter []time.Duration
}

func (iv *intervals) Emit(rs []telemetry.Reading) error {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	for _, r := range rs {
		if l, ok := iv.last[r.Device]; ok {
			d := r.Time.Sub(l) - time.Second
			if d < 0 {
				d = -d
			}
			iv.jitter = append(iv.jitter, d)
		}
		iv.last[r.Device] = r.Time
	}
	return nil
}

// TestFleetSimulators is the child of TestFleetFigures: it serves simulators,
// prints their addresses and runs until its input closes.
func TestFleetSimulators(t *testing.T) {
	var n int
	if _, err := fmt.Sscanf(os.Getenv("SANIGATE_MODBUS_FLEET_CHILD"), "%d", &n); err != nil {
		t.Skip("child of TestFleetFigures")
	}
	for i := range n {
		s := startSim(t, "toilet_controller", modbussim.Options{Seed: uint64(i)})
		fmt.Println(s.Addr())
	}
	bufio.NewReader(os.Stdin).ReadString(0)
}
