// Command sanigate runs the sanitation fleet gateway.
//
//	sanigate -config sanigate.yaml          run the gateway
//	sanigate -config sanigate.yaml -check   check the configuration and exit
//	sanigate hash-password                  read a password on stdin, print its bcrypt hash
//	sanigate hash-password -generate        print a new 128-bit device secret, then its hash
//	sanigate user add -name N -role R       add a console user (password on stdin)
//	sanigate device add|disable|rotate ...  manage the device registry in the case store
//	sanigate -version                       print the version, commit and build date
//	sanigate backup -out FILE.tar.gz        back up the case store and the configuration
//	sanigate restore -in FILE.tar.gz        restore them (see -help of each)
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/gateway"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if code, ok := runSubcommand(args, stdin, stdout, stderr); ok {
		return code
	}
	f, code, ok := parseFlags(args, stderr)
	if !ok {
		return code
	}
	if f.showVer {
		printVersion(stdout)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(stderr, "sanigate: -log-level: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, f.logFormat, level, "gateway")
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: -log-format: %v\n", err)
		return 2
	}

	cfg, err := fleet.Load(f.configPath)
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	f.override(cfg)
	roles, err := gateway.ParseRoles(f.roles)
	if err == nil {
		_, _, err = gateway.ClusterOptions(cfg)
	}
	if err == nil {
		err = gateway.CheckRoles(cfg, roles)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	if f.check {
		fmt.Fprintf(stdout, "%s: configuration is valid (%d devices)\n", f.configPath, len(cfg.Devices))
		return 0
	}

	return serve(cfg, log, f.pprofOn, roles, f.override, stderr)
}

// runSubcommand runs the subcommand named by args[0], if there is one, and
// reports its exit code; ok is false when args name no subcommand.
func runSubcommand(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "hash-password":
		return hashPassword(args[1:], stdin, stdout, stderr), true
	case "user":
		return userCmd(args[1:], stdin, stdout, stderr), true
	case "device":
		return deviceCmd(args[1:], stdout, stderr), true
	case "backup":
		return backupCmd(args[1:], stdout, stderr), true
	case "restore":
		return restoreCmd(args[1:], stdout, stderr), true
	case "rollups":
		return rollupsCmd(args[1:], stdout, stderr), true
	case "version":
		printVersion(stdout)
		return 0, true
	}
	return 0, false
}

// runFlags holds the command line of the gateway itself.
type runFlags struct {
	configPath, logLevel, logFormat, roles string
	mqttAddr, httpAddr, influxURL, bucket  string
	spoolDir, natsURLs, tlsCert, tlsKey    string
	clientCA, mqttTLS, httpsAddr           string
	check, pprofOn, showVer                bool
}

// parseFlags parses the gateway's flags. When ok is false the caller exits
// with code: 0 after -help, 2 after a bad flag (already printed).
func parseFlags(args []string, stderr io.Writer) (f runFlags, code int, ok bool) {
	fs := flag.NewFlagSet("sanigate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(fs, stderr) }
	fs.StringVar(&f.configPath, "config", "sanigate.yaml", "path of the configuration `file`")
	fs.BoolVar(&f.check, "check", false, "check the configuration, print every problem, and exit")
	fs.StringVar(&f.mqttAddr, "mqtt-address", "", "MQTT listen `address` (host:port), overrides mqtt.address")
	fs.StringVar(&f.httpAddr, "http-address", "", "HTTP listen `address` for /metrics, /healthz, /readyz, overrides http.address")
	fs.StringVar(&f.influxURL, "influxdb-url", "", "InfluxDB `URL`, overrides influxdb.url")
	fs.StringVar(&f.bucket, "influxdb-bucket", "", "InfluxDB `bucket` (1.x: database or database/retention-policy), overrides influxdb.bucket")
	fs.StringVar(&f.spoolDir, "spool-dir", "", "spool `folder`, overrides spool.dir")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `format`: text or json")
	fs.BoolVar(&f.pprofOn, "pprof", false, "serve Go's profiler under /debug/pprof/ on the HTTP address")
	fs.StringVar(&f.roles, "roles", "edge,detect,writer,api", "`roles` this process runs, comma-separated; a subset needs cluster mode")
	fs.StringVar(&f.natsURLs, "nats", "", "comma-separated NATS `URLs` of the cluster, overrides cluster.nats (cluster mode)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "certificate PEM `file` for MQTT over TLS and HTTPS, overrides mqtt/http.tls_cert_file")
	fs.StringVar(&f.tlsKey, "tls-key", "", "key PEM `file` for -tls-cert, overrides mqtt/http.tls_key_file")
	fs.StringVar(&f.clientCA, "client-ca", "", "CA PEM `file` for device client certificates, overrides mqtt.client_ca_file")
	fs.StringVar(&f.mqttTLS, "mqtt-tls-address", "", "MQTT over TLS listen `address`, overrides mqtt.tls_address")
	fs.StringVar(&f.httpsAddr, "https-address", "", "HTTPS listen `address` (API, /mqtt WebSocket), overrides http.tls_address")
	fs.BoolVar(&f.showVer, "version", false, "print the version, commit and build date, and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, 0, false
		}
		return f, 2, false
	}
	return f, 0, true
}

// override applies the flags that were given over the configuration file.
func (f runFlags) override(cfg *fleet.Config) {
	for _, o := range []struct {
		v   string
		set func(string)
	}{
		{f.mqttAddr, func(v string) { cfg.MQTT.Address = v }},
		{f.httpAddr, func(v string) { cfg.HTTP.Address = v }},
		{f.influxURL, func(v string) { cfg.InfluxDB.URL = v }},
		{f.bucket, func(v string) { cfg.InfluxDB.Bucket = v }},
		{f.spoolDir, func(v string) { cfg.Spool.Dir = v }},
		{f.natsURLs, func(v string) { cfg.Cluster.NATS = strings.Split(v, ",") }},
		{f.tlsCert, func(v string) { cfg.MQTT.TLSCertFile, cfg.HTTP.TLSCertFile = v, v }},
		{f.tlsKey, func(v string) { cfg.MQTT.TLSKeyFile, cfg.HTTP.TLSKeyFile = v, v }},
		{f.clientCA, func(v string) { cfg.MQTT.ClientCAFile = v }},
		{f.mqttTLS, func(v string) { cfg.MQTT.TLSAddress = v }},
		{f.httpsAddr, func(v string) { cfg.HTTP.TLSAddress = v }},
	} {
		if o.v != "" {
			o.set(o.v)
		}
	}
}

func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", 10, "bcrypt `cost` (4-31)")
	generate := fs.Bool("generate", false, "generate a 128-bit random device secret; print it, then its $hmac-sha256$ hash")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *generate {
		secret, h, err := fleet.GenerateSecret()
		if err != nil {
			fmt.Fprintf(stderr, "sanigate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n%s\n", secret, h)
		return 0
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "sanigate: empty password")
		return 1
	}
	h, err := fleet.HashPassword(pw, *cost)
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}

func usage(fs *flag.FlagSet, stderr io.Writer) {
	fmt.Fprintf(stderr, `sanigate: the sanitation fleet gateway.

Usage:
  sanigate [flags]              run the gateway
  sanigate hash-password [-cost N]   read a password on stdin and print its bcrypt hash
  sanigate hash-password -generate   print a new random device secret and its hash
  sanigate user add -config FILE -name N -role city|district|unit [-district D] [-unit U] [-admin]
                                add a console user; the password is read on stdin
  sanigate user list -config FILE   list the console users
  sanigate device add -config FILE -id ID -kind K [-category C] [-capacity-kg N] [-lat Y -lon X] ...
                                register a device; prints its new secret (shown once)
  sanigate device disable|enable -config FILE -id ID   a disabled device is cut off and cannot log in
  sanigate device rotate -config FILE -id ID [-grace 24h]   new secret; the old one logs in for -grace
  sanigate device list -config FILE   the device registry (no secrets)
  sanigate backup [-config F] [-out A.tar.gz]   back up the case store and the configuration files
  sanigate restore -in A.tar.gz [-config F | -config-out DIR] [-force]   put a backup back
  sanigate rollups [-config F] [-backfill 2160h]   set up InfluxDB retention; compute past rollups
  sanigate version              print the version, commit and build date

SIGHUP reloads the configuration file: devices, places, routes, thresholds,
units, dispatch and tokens change at once; listeners and stores need a restart.

Flags override the configuration file; SANIGATE_* environment variables
(SANIGATE_MQTT_ADDRESS, SANIGATE_HTTP_ADDRESS, SANIGATE_INFLUXDB_URL,
SANIGATE_INFLUXDB_BUCKET, SANIGATE_INFLUXDB_ORG, SANIGATE_INFLUXDB_TOKEN,
SANIGATE_SPOOL_DIR) override the file too, and flags override them.

Flags:
`)
	fs.PrintDefaults()
}

// serve runs the gateway until SIGINT or SIGTERM, then stops it in order.
// SIGHUP reloads the configuration file (flags still override it).
func serve(cfg *fleet.Config, log *slog.Logger, pprof bool, roles gateway.Roles, override func(*fleet.Config), stderr io.Writer) int {
	g, err := gateway.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	g.Profiling = pprof
	g.Roles = roles
	g.Overrides = override
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := g.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			// Reload logs its outcome, and every problem of a refused file.
			if rep, err := g.Reload(ctx); err != nil {
				for _, p := range rep.Problems {
					log.Warn("configuration problem", "component", "reload", "problem", p)
				}
			}
		}
	}
	log = log.With("component", "main")
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.Close(sctx); err != nil {
		log.Error("shutdown", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
