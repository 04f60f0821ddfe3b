// Command sanisim runs the simulated devices of the demo city against a
// gateway, and writes the demo configuration.
//
//	sanisim run -broker 127.0.0.1:1883        simulate the demo fleet
//	sanisim gen-demo -out examples/demo       write the demo sanigate.yaml
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/simulators"
	"github.com/sanigate/sanigate/simulators/modbussim"
	"github.com/sanigate/sanigate/simulators/scenario"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintf(stderr, `sanisim: simulated sanitation devices.

Usage:
  sanisim run [flags]        simulate the demo city's fleet over MQTT
  sanisim gen-demo [flags]   write the demo configuration (sanigate.yaml)
  sanisim bench [flags]      publish as fast as acknowledgements allow; print rate and PUBACK latency
  sanisim bench-config       write a configuration of N load devices and their generated secrets
  sanisim idle [flags]       hold N idle device connections; time their reconnection after a gateway restart
  sanisim modbus-fleet       serve N Modbus toilet controllers and write a gateway configuration polling them
  sanisim gen-certs          write a throw-away CA, a localhost server certificate and device certificates

Run 'sanisim <command> -h' for the flags of a command.
`)
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	switch args[0] {
	case "run":
		return runFleet(args[1:], stdout, stderr)
	case "gen-demo":
		return genDemo(args[1:], stdout, stderr)
	case "bench":
		return bench(args[1:], stdout, stderr)
	case "idle":
		return idle(args[1:], stdout, stderr)
	case "bench-config":
		return benchConfig(args[1:], stdout, stderr)
	case "modbus-fleet":
		return modbusFleet(args[1:], stdout, stderr)
	case "gen-certs":
		return genCerts(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage()
		return 0
	default:
		usage()
		return 2
	}
}

func runFleet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sanisim run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "127.0.0.1:1883", "gateway MQTT `address`")
	configPath := fs.String("config", "examples/demo/sanigate.yaml", "the gateway's configuration `file`: its devices, places and routes are simulated")
	seed := fs.Uint64("seed", 1, "random `seed`; the same seed replays the same fleet")
	every := fs.Duration("every", 5*time.Second, "how often each device reports")
	qos := fs.Int("qos", 1, "MQTT QoS of readings (0 or 1)")
	playDays := fs.Bool("scenario", false, "play scenario days live instead of the free-running fleet, with violations of every type injected at known times (ground truth in -truth)")
	truthOut := fs.String("truth", "", "with -scenario, write the injected violations (ground truth) to this JSON `file`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := fleet.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	devices := simulators.FleetFrom(cfg, *seed)
	mc := modbus.FromConfig(cfg)
	for i, d := range mc.Devices {
		if d.Profile == "" {
			continue
		}
		sim, err := modbussim.Start(ctx, d.Profile, d.Address, modbussim.Options{
			Seed: *seed + uint64(i), RTUOverTCP: d.Transport == modbus.RTUOverTCP, UnitID: d.UnitID,
		})
		if err != nil {
			fmt.Fprintf(stderr, "sanisim: modbus simulator %s: %v\n", d.ID, err)
			return 1
		}
		defer sim.Close()
		log.Info("modbus simulator", "device", d.ID, "profile", d.Profile, "address", sim.Addr(), "transport", d.Transport)
	}
	if *playDays {
		return playScenario(ctx, cfg, *seed, *broker, *truthOut, log, stderr)
	}
	var stats simulators.Stats
	go repeatEvery(ctx, 10*time.Second, func() {
		log.Info("simulated fleet", "devices", len(devices), "published", stats.Published.Load(), "acked", stats.Acked.Load(), "failed", stats.Failed.Load())
	})
	log.Info("simulating the demo fleet", "devices", len(devices), "broker", *broker, "every", *every)
	err = simulators.Run(ctx, devices, simulators.RunOptions{
		Broker: *broker, Password: simulators.DemoPassword, Every: *every, QoS: byte(*qos), Logger: log,
	}, &stats)
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	return 0
}

func genDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sanisim gen-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "examples/demo/sanigate.yaml", "`file` to write")
	cost := fs.Int("cost", 6, "bcrypt cost of the demo password hashes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	b, err := simulators.DemoConfig(*cost)
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return 0
}

func loadIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("load-%04d", i+1)
	}
	return ids
}

func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sanisim bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "127.0.0.1:1883", "MQTT `address`")
	devices := fs.Int("devices", 200, "simulated devices, one connection each")
	qos := fs.Int("qos", 1, "QoS 0 or 1")
	window := fs.Int("window", 8, "QoS 1 messages in flight per connection")
	rate := fs.Float64("rate", 0, "messages per second over all devices (0: as fast as possible)")
	duration := fs.Duration("duration", 10*time.Second, "how long to publish")
	offset := fs.Duration("time-offset", time.Hour, "device time of the first reading, before now; each reading is a millisecond after the last (0: each reading stamped when sent, as a device with a synchronized clock does)")
	secrets := fs.String("secrets", "", "`file` of device secrets written by bench-config (default: password \"pw-\" + id)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pw, err := passwords(*secrets)
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	res, err := simulators.Load(context.Background(), simulators.LoadOptions{
		Broker: *broker, Devices: loadIDs(*devices), Password: pw,
		QoS: byte(*qos), Window: *window, Rate: *rate, Duration: *duration, Base: time.Now().Add(-*offset), Live: *offset == 0,
	})
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
	}
	fmt.Fprintf(stdout, "qos=%d devices=%d sent=%d acked=%d elapsed=%.1fs rate=%.0f/s puback_p50=%s puback_p99=%s\n",
		*qos, *devices, res.Sent, res.Acked, res.Elapsed.Seconds(), res.Rate(),
		res.Percentile(50).Round(10*time.Microsecond), res.Percentile(99).Round(10*time.Microsecond))
	if err != nil {
		return 1
	}
	return 0
}

func benchConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sanisim bench-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	devices := fs.Int("devices", 200, "load devices")
	out := fs.String("out", "bench.yaml", "`file` to write")
	influx := fs.String("influxdb-url", "http://127.0.0.1:8086", "InfluxDB `URL`")
	mqtt := fs.String("mqtt-address", "127.0.0.1:1883", "MQTT listen `address`")
	httpAddr := fs.String("http-address", "127.0.0.1:8080", "HTTP listen `address`")
	spool := fs.String("spool-dir", "spool", "spool `folder`")
	secrets := fs.String("secrets", "", "write generated device secrets to this `file` and store their $hmac-sha256$ hashes (default: bcrypt cost 4 of \"pw-\" + id)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var sec strings.Builder
	var b strings.Builder
	fmt.Fprintf(&b, "mqtt:\n  address: %q\nhttp:\n  address: %q\ninfluxdb:\n  url: %s\n  bucket: sanigate\nspool:\n  dir: %s\ndevices:\n", *mqtt, *httpAddr, *influx, *spool)
	for _, id := range loadIDs(*devices) {
		var h string
		var err error
		if *secrets != "" {
			var s string
			s, h, err = fleet.GenerateSecret()
			fmt.Fprintf(&sec, "%s\t%s\n", id, s)
		} else {
			h, err = fleet.HashPassword("pw-"+id, 4)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sanisim: %v\n", err)
			return 1
		}
		fmt.Fprintf(&b, "  - {id: %s, kind: bin, category: other, contractor: bench, district: bench, password_hash: %q}\n", id, h)
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	if *secrets != "" {
		if err := os.WriteFile(*secrets, []byte(sec.String()), 0o600); err != nil {
			fmt.Fprintf(stderr, "sanisim: %v\n", err)
			return 1
		}
	}
	return 0
}

// playScenario plays scenario days into the gateway: the first day moved so
// that its first illegal dump ended a few minutes ago (scenario.Demo), so a
// case is filed within a minute whatever the hour; it is replayed from just
// before that dump, then played live, and the days after it follow, moved
// as much. The ground truth of what is played is written to truthOut.
func playScenario(ctx context.Context, cfg *fleet.Config, seed uint64, broker, truthOut string, log *slog.Logger, stderr io.Writer) int {
	modbusDevices := map[string]bool{}
	for _, d := range cfg.Devices {
		if d.Transport == "modbus" {
			modbusDevices[d.ID] = true
		}
	}
	var truth []scenario.Expected
	sc, from, shift, err := scenario.Demo(cfg, seed, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	day := sc.To.Add(-shift) // the calendar day after the one played first
	for i := 0; ctx.Err() == nil; i++ {
		if i > 0 {
			next, err := scenario.Generate(cfg, seed+uint64(i), day)
			if err == nil {
				sc, err = next.Shift(shift)
			}
			if err != nil {
				fmt.Fprintf(stderr, "sanisim: %v\n", err)
				return 1
			}
			day = next.To
		}
		for _, x := range sc.Truth {
			if !x.Start.Before(from) {
				truth = append(truth, x)
			}
		}
		if truthOut != "" {
			b, _ := json.MarshalIndent(truth, "", "  ")
			if err := os.WriteFile(truthOut, b, 0o644); err != nil {
				fmt.Fprintf(stderr, "sanisim: %v\n", err)
				return 1
			}
		}
		log.Info("playing a scenario day", "day", sc.From.Format("2006-01-02"), "messages", len(sc.Messages), "violations injected", len(sc.Truth))
		var st scenario.PublishStats
		start := time.Now()
		tctx, stopTicker := context.WithCancel(ctx)
		go repeatEvery(tctx, 30*time.Second, func() {
			log.Info("scenario", "sent", st.Sent.Load(), "acked", st.Acked.Load(), "failed", st.Failed.Load())
		})
		err = scenario.Play(ctx, sc.Live(), scenario.PublishOptions{
			Broker: broker, Password: simulators.DemoPassword, Skip: func(id string) bool { return modbusDevices[id] },
			From: from,
		}, &st)
		stopTicker()
		log.Info("scenario day played", "day", sc.From.Format("2006-01-02"), "sent", st.Sent.Load(), "acked", st.Acked.Load(), "failed", st.Failed.Load(), "took", time.Since(start).Round(time.Second))
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(stderr, "sanisim: %v\n", err)
			return 1
		}
	}
	return 0
}
func modbusFleet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sanisim modbus-fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("devices", 500, "simulated toilet controllers")
	basePort := fs.Int("base-port", 16000, "first loopback `port`; device i listens on base-port+i")
	interval := fs.Duration("poll-interval", time.Second, "the gateway's poll interval")
	out := fs.String("out", "modbus-fleet.yaml", "gateway configuration `file` to write")
	influx := fs.String("influxdb-url", "http://127.0.0.1:8086", "InfluxDB `URL`")
	mqtt := fs.String("mqtt-address", "127.0.0.1:1883", "MQTT listen `address`")
	httpAddr := fs.String("http-address", "127.0.0.1:8080", "HTTP listen `address`")
	spool := fs.String("spool-dir", "spool", "spool `folder`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var devs, polls strings.Builder
	for i := 0; i < *n; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", *basePort+i)
		sim, err := modbussim.Start(ctx, "toilet_controller", addr, modbussim.Options{Seed: uint64(i + 1)})
		if err != nil {
			fmt.Fprintf(stderr, "sanisim: simulator %d: %v\n", i, err)
			return 1
		}
		defer sim.Close()
		id := fmt.Sprintf("mb-toilet-%04d", i+1)
		fmt.Fprintf(&devs, "  - {id: %s, kind: toilet, class: 2, contractor: bench, district: bench, transport: modbus}\n", id)
		fmt.Fprintf(&polls, "    - {id: %s, kind: toilet, transport: tcp, address: %q, unit_id: 1, poll_interval: %s, timeout: %s, profile: toilet_controller}\n",
			id, sim.Addr(), *interval, *interval/2)
	}
	cfg := fmt.Sprintf("mqtt:\n  address: %q\nhttp:\n  address: %q\ninfluxdb:\n  url: %s\n  bucket: sanigate\nspool:\n  dir: %s\ndevices:\n%smodbus:\n  devices:\n%s",
		*mqtt, *httpAddr, *influx, *spool, devs.String(), polls.String())
	if err := os.WriteFile(*out, []byte(cfg), 0o644); err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "serving %d Modbus simulators from port %d; configuration in %s\n", *n, *basePort, *out)
	<-ctx.Done()
	return 0
}

// repeatEvery calls fn each period until ctx ends: the progress lines.
func repeatEvery(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
