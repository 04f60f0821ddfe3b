package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sanigate/sanigate/simulators"
)

// idle holds N idle device connections, printing when all are connected and
// how long each reconnection wave (a gateway restart) took.
func idle(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sanisim idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "127.0.0.1:1883", "MQTT `address`")
	devices := fs.Int("devices", 15000, "idle devices, one connection each")
	dialers := fs.Int("dialers", 500, "connections being opened at once")
	duration := fs.Duration("duration", 10*time.Minute, "how long to hold the connections (SIGTERM ends sooner)")
	secrets := fs.String("secrets", "", "`file` of device secrets written by bench-config (default: password \"pw-\" + id)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	lim, err := simulators.RaiseFileLimit()
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	if lim < uint64(*devices)+100 {
		fmt.Fprintf(stderr, "sanisim: open file limit %d is below %d devices\n", lim, *devices)
		return 1
	}
	pw, err := passwords(*secrets)
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, *duration)
	defer cancel2()
	err = simulators.Idle(ctx, simulators.IdleOptions{
		Broker: *broker, Devices: loadIDs(*devices), Password: pw, Dialers: *dialers,
		Report: func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintf(stderr, "sanisim: %v\n", err)
		return 1
	}
	return 0
}

// passwords returns each load device's password: from a secrets file of
// "id<TAB>secret" lines, or "pw-" + id without one.
func passwords(file string) (func(string) string, error) {
	if file == "" {
		return func(id string) string { return "pw-" + id }, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, s, ok := strings.Cut(sc.Text(), "\t")
		if ok {
			m[id] = s
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secrets %s: %w", file, err)
	}
	return func(id string) string { return m[id] }, nil
}
