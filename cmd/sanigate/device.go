package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
)

// deviceCmd manages the device registry in the case store the
// configuration names, as the admin API does; running gateways apply the
// change within their registry poll (5 s by default):
//
//	sanigate device add -config sanigate.yaml -id truck-9 -kind truck -category kitchen -capacity-kg 8000
//	sanigate device disable|enable -config sanigate.yaml -id truck-9
//	sanigate device rotate -config sanigate.yaml -id truck-9 [-grace 24h]
//	sanigate device remove -config sanigate.yaml -id truck-9
//	sanigate device list -config sanigate.yaml
//
// add and rotate print the new secret alone on stdout (shown this once).
// remove hands a device of the file back to it (its entry in the file
// applies again), and deletes any other.
// The file's devices are brought into the registry first, as a gateway does
// at start, so that a device of the file can be disabled or rotated before
// any gateway ran.
func deviceCmd(args []string, stdout, stderr io.Writer) int {
	ops := map[string]bool{"add": true, "disable": true, "enable": true, "rotate": true, "remove": true, "list": true}
	if len(args) == 0 || !ops[args[0]] {
		fmt.Fprintln(stderr, "usage: sanigate device add|disable|enable|rotate|remove|list -config FILE [flags]")
		return 2
	}
	op := args[0]
	f, ok := parseDeviceFlags(op, args[1:], stderr)
	if !ok {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	cfg, err := fleet.Load(f.config)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	svc, err := cases.Open(ctx, cases.FromConfig(cfg), cases.Deps{Calendar: cfg.WorkCalendar, Location: cfg.Location(),
		Publisher: noPublisher{}, Dir: filepath.Dir(cfg.File)})
	if err != nil {
		return fail(err)
	}
	defer svc.Close()
	if _, err := svc.SyncConfigDevices(ctx, cfg.Devices); err != nil {
		return fail(err)
	}
	switch op {
	case "list":
		err = listDevices(ctx, svc, stdout)
	case "add":
		err = addDevice(ctx, svc, cfg, f, stdout, stderr)
	case "disable", "enable":
		if err = svc.SetDeviceDisabled(ctx, f.id, op == "disable"); err == nil {
			fmt.Fprintf(stdout, "device %s %sd\n", f.id, op)
		}
	case "remove":
		var back bool
		if back, err = svc.RemoveDevice(ctx, f.id); err == nil && back {
			fmt.Fprintf(stdout, "device %s handed back to the file\n", f.id)
		} else if err == nil {
			fmt.Fprintf(stdout, "device %s removed\n", f.id)
		}
	default: // rotate
		err = rotateDevice(ctx, svc, f, stdout, stderr)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// deviceFlags are the flags of sanigate device.
type deviceFlags struct {
	config, id, kind, category, contractor, district, transport, lat, lon string
	capacity                                                              float64
	class                                                                 int
	interval, grace                                                       time.Duration
}

// parseDeviceFlags reads op's flags; false (with the reason on stderr)
// when they are wrong.
func parseDeviceFlags(op string, args []string, stderr io.Writer) (deviceFlags, bool) {
	var f deviceFlags
	fs := flag.NewFlagSet("device "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "sanigate.yaml", "path of the configuration `file`")
	fs.StringVar(&f.id, "id", "", "device `id`")
	fs.StringVar(&f.kind, "kind", "", "device `kind`: bin, truck, toilet, sweeper or weighbridge (add)")
	fs.StringVar(&f.category, "category", "", "sorting `category` of a bin or truck (add)")
	fs.StringVar(&f.contractor, "contractor", "", "`contractor` (add)")
	fs.StringVar(&f.district, "district", "", "`district` (add)")
	fs.Float64Var(&f.capacity, "capacity-kg", 0, "rated capacity of a truck in `kg` (add)")
	fs.IntVar(&f.class, "class", 0, "toilet `class` 1, 2 or 3 (add)")
	fs.DurationVar(&f.interval, "interval", 0, "expected reporting `interval` (add; default per kind)")
	fs.StringVar(&f.transport, "transport", "", "`transport`: mqtt (default) or modbus (add)")
	fs.StringVar(&f.lat, "lat", "", "registered `latitude` of a fixed device (add)")
	fs.StringVar(&f.lon, "lon", "", "registered `longitude` of a fixed device (add)")
	fs.DurationVar(&f.grace, "grace", 24*time.Hour, "how long the old secret stays valid (rotate; 0 ends it at once)")
	if err := fs.Parse(args); err != nil {
		return f, false
	}
	if op != "list" && f.id == "" {
		fmt.Fprintf(stderr, "sanigate: device %s needs -id\n", op)
		return f, false
	}
	return f, true
}

// listDevices prints the registry, a device a line.
func listDevices(ctx context.Context, svc *cases.Service, stdout io.Writer) error {
	ds, _, err := svc.RegisteredDevices(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		state := "enabled"
		if d.Disabled {
			state = "disabled"
		}
		extra := ""
		if !d.PreviousUntil.IsZero() && time.Now().Before(d.PreviousUntil) {
			extra = "\told secret until " + d.PreviousUntil.Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s%s\n", d.ID, d.Kind, state, d.Managed, extra)
	}
	return nil
}

// addDevice registers a device and prints its secret alone on stdout.
func addDevice(ctx context.Context, svc *cases.Service, cfg *fleet.Config, f deviceFlags, stdout, stderr io.Writer) error {
	d := fleet.Device{ID: f.id, Kind: f.kind, Category: f.category, Contractor: f.contractor, District: f.district,
		CapacityKG: f.capacity, Class: f.class, Interval: fleet.Duration(f.interval), Transport: f.transport}
	var err error
	if d.Lat, err = optFloat("lat", f.lat); err == nil {
		d.Lon, err = optFloat("lon", f.lon)
	}
	if err != nil {
		return err
	}
	secret, err := svc.AddDevice(ctx, cfg, d)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "device %s registered", d.ID)
	if secret == "" {
		fmt.Fprintln(stderr, " (polled: no secret)")
		return nil
	}
	fmt.Fprintln(stderr, "; its secret follows, shown this once: put it on the device as its MQTT password")
	fmt.Fprintln(stdout, secret)
	return nil
}

// rotateDevice gives a device a new secret and prints it alone on stdout.
func rotateDevice(ctx context.Context, svc *cases.Service, f deviceFlags, stdout, stderr io.Writer) error {
	secret, until, err := svc.RotateDevice(ctx, f.id, f.grace)
	if err != nil {
		return err
	}
	if until.IsZero() {
		fmt.Fprintf(stderr, "device %s has a new secret; the old one no longer logs in\n", f.id)
	} else {
		fmt.Fprintf(stderr, "device %s has a new secret; the old one logs in until %s\n", f.id, until.Format(time.RFC3339))
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

func optFloat(name, v string) (*float64, error) {
	if v == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return nil, errors.New("-" + name + ": not a number")
	}
	return &f, nil
}
