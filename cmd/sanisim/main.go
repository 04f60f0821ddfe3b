// Command sanisim runs the simulated devices of the demo city against a
// gateway, and writes the demo configuration.
//
//	sanisim run -broker 127.0.0.1:1883        simulate the demo fleet
//	sanisim gen-demo -out examples/demo       write the demo sanigate.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/gateway"
	"github.com/sanigate/sanigate/simulators"
	"github.com/sanigate/sanigate/simulators/modbussim"
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
	mc, err := gateway.ModbusConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
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
	var stats simulators.Stats
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				log.Info("simulated fleet", "devices", len(devices), "published", stats.Published.Load(), "acked", stats.Acked.Load(), "failed", stats.Failed.Load())
			}
		}
	}()
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
