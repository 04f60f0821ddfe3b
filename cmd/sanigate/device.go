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
//	sanigate device list -config sanigate.yaml
//
// add and rotate print the new secret alone on stdout (shown this once).
// The file's devices are brought into the registry first, as a gateway does
// at start, so that a device of the file can be disabled or rotated before
// any gateway ran.
func deviceCmd(args []string, stdout, stderr io.Writer) int {
	ops := map[string]bool{"add": true, "disable": true, "enable": true, "rotate": true, "list": true}
	if len(args) == 0 || !ops[args[0]] {
		fmt.Fprintln(stderr, "usage: sanigate device add|disable|enable|rotate|list -config FILE [flags]")
		return 2
	}
	op := args[0]
	fs := flag.NewFlagSet("device "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "sanigate.yaml", "path of the configuration `file`")
	id := fs.String("id", "", "device `id`")
	kind := fs.String("kind", "", "device `kind`: bin, truck, toilet, sweeper or weighbridge (add)")
	category := fs.String("category", "", "sorting `category` of a bin or truck (add)")
	contractor := fs.String("contractor", "", "`contractor` (add)")
	district := fs.String("district", "", "`district` (add)")
	capacity := fs.Float64("capacity-kg", 0, "rated capacity of a truck in `kg` (add)")
	class := fs.Int("class", 0, "toilet `class` 1, 2 or 3 (add)")
	interval := fs.Duration("interval", 0, "expected reporting `interval` (add; default per kind)")
	transport := fs.String("transport", "", "`transport`: mqtt (default) or modbus (add)")
	lat := fs.String("lat", "", "registered `latitude` of a fixed device (add)")
	lon := fs.String("lon", "", "registered `longitude` of a fixed device (add)")
	grace := fs.Duration("grace", 24*time.Hour, "how long the old secret stays valid (rotate; 0 ends it at once)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if op != "list" && *id == "" {
		fmt.Fprintf(stderr, "sanigate: device %s needs -id\n", op)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	cfg, err := fleet.Load(*configPath)
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
		ds, _, err := svc.RegisteredDevices(ctx)
		if err != nil {
			return fail(err)
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
		return 0
	case "add":
		d := fleet.Device{ID: *id, Kind: *kind, Category: *category, Contractor: *contractor, District: *district,
			CapacityKG: *capacity, Class: *class, Interval: fleet.Duration(*interval), Transport: *transport}
		if d.Lat, err = optFloat("lat", *lat); err == nil {
			d.Lon, err = optFloat("lon", *lon)
		}
		if err != nil {
			return fail(err)
		}
		secret, err := svc.AddDevice(ctx, cfg, d)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "device %s registered", d.ID)
		if secret == "" {
			fmt.Fprintln(stderr, " (polled: no secret)")
			return 0
		}
		fmt.Fprintln(stderr, "; its secret follows, shown this once: put it on the device as its MQTT password")
		fmt.Fprintln(stdout, secret)
		return 0
	case "disable", "enable":
		if err := svc.SetDeviceDisabled(ctx, *id, op == "disable"); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "device %s %sd\n", *id, op)
		return 0
	default: // rotate
		secret, until, err := svc.RotateDevice(ctx, *id, *grace)
		if err != nil {
			return fail(err)
		}
		if until.IsZero() {
			fmt.Fprintf(stderr, "device %s has a new secret; the old one no longer logs in\n", *id)
		} else {
			fmt.Fprintf(stderr, "device %s has a new secret; the old one logs in until %s\n", *id, until.Format(time.RFC3339))
		}
		fmt.Fprintln(stdout, secret)
		return 0
	}
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
