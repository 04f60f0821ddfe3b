// Command sanigate runs the sanitation fleet gateway.
//
//	sanigate -config sanigate.yaml          run the gateway
//	sanigate -config sanigate.yaml -check   check the configuration and exit
//	sanigate hash-password                  read a password on stdin, print its bcrypt hash
//	sanigate hash-password -generate        print a new 128-bit device secret, then its hash
//	sanigate user add -name N -role R       add a console user (password on stdin)
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
	if len(args) > 0 && args[0] == "hash-password" {
		return hashPassword(args[1:], stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "user" {
		return userCmd(args[1:], stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "backup" {
		return backupCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "restore" {
		return restoreCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "rollups" {
		return rollupsCmd(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "version" {
		printVersion(stdout)
		return 0
	}
	fs := flag.NewFlagSet("sanigate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(fs, stderr) }
	var (
		configPath = fs.String("config", "sanigate.yaml", "path of the configuration `file`")
		check      = fs.Bool("check", false, "check the configuration, print every problem, and exit")
		mqttAddr   = fs.String("mqtt-address", "", "MQTT listen `address` (host:port), overrides mqtt.address")
		httpAddr   = fs.String("http-address", "", "HTTP listen `address` for /metrics, /healthz, /readyz, overrides http.address")
		influxURL  = fs.String("influxdb-url", "", "InfluxDB `URL`, overrides influxdb.url")
		bucket     = fs.String("influxdb-bucket", "", "InfluxDB `bucket` (1.x: database or database/retention-policy), overrides influxdb.bucket")
		spoolDir   = fs.String("spool-dir", "", "spool `folder`, overrides spool.dir")
		logLevel   = fs.String("log-level", "info", "log `level`: debug, info, warn, error")
		logFormat  = fs.String("log-format", "text", "log `format`: text or json")
		pprofOn    = fs.Bool("pprof", false, "serve Go's profiler under /debug/pprof/ on the HTTP address")
		rolesFlag  = fs.String("roles", "edge,detect,writer,api", "`roles` this process runs, comma-separated; a subset needs cluster mode")
		natsURLs   = fs.String("nats", "", "comma-separated NATS `URLs` of the cluster, overrides cluster.nats (cluster mode)")
		tlsCert    = fs.String("tls-cert", "", "certificate PEM `file` for MQTT over TLS and HTTPS, overrides mqtt/http.tls_cert_file")
		tlsKey     = fs.String("tls-key", "", "key PEM `file` for -tls-cert, overrides mqtt/http.tls_key_file")
		clientCA   = fs.String("client-ca", "", "CA PEM `file` for device client certificates, overrides mqtt.client_ca_file")
		mqttTLS    = fs.String("mqtt-tls-address", "", "MQTT over TLS listen `address`, overrides mqtt.tls_address")
		httpsAddr  = fs.String("https-address", "", "HTTPS listen `address` (API, /mqtt WebSocket), overrides http.tls_address")
		showVer    = fs.Bool("version", false, "print the version, commit and build date, and exit")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVer {
		printVersion(stdout)
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "sanigate: -log-level: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, *logFormat, level, "gateway")
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: -log-format: %v\n", err)
		return 2
	}

	cfg, err := fleet.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	for _, o := range []struct {
		v   string
		set func(string)
	}{
		{*mqttAddr, func(v string) { cfg.MQTT.Address = v }},
		{*httpAddr, func(v string) { cfg.HTTP.Address = v }},
		{*influxURL, func(v string) { cfg.InfluxDB.URL = v }},
		{*bucket, func(v string) { cfg.InfluxDB.Bucket = v }},
		{*spoolDir, func(v string) { cfg.Spool.Dir = v }},
		{*natsURLs, func(v string) { cfg.Cluster.NATS = strings.Split(v, ",") }},
		{*tlsCert, func(v string) { cfg.MQTT.TLSCertFile, cfg.HTTP.TLSCertFile = v, v }},
		{*tlsKey, func(v string) { cfg.MQTT.TLSKeyFile, cfg.HTTP.TLSKeyFile = v, v }},
		{*clientCA, func(v string) { cfg.MQTT.ClientCAFile = v }},
		{*mqttTLS, func(v string) { cfg.MQTT.TLSAddress = v }},
		{*httpsAddr, func(v string) { cfg.HTTP.TLSAddress = v }},
	} {
		if o.v != "" {
			o.set(o.v)
		}
	}
	roles, err := gateway.ParseRoles(*rolesFlag)
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
	if *check {
		fmt.Fprintf(stdout, "%s: configuration is valid (%d devices)\n", *configPath, len(cfg.Devices))
		return 0
	}

	return serve(cfg, log, *pprofOn, roles, stderr)
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
  sanigate backup [-config F] [-out A.tar.gz]   back up the case store and the configuration files
  sanigate restore -in A.tar.gz [-config F | -config-out DIR] [-force]   put a backup back
  sanigate rollups [-config F] [-backfill 2160h]   set up InfluxDB retention; compute past rollups
  sanigate version              print the version, commit and build date

Flags override the configuration file; SANIGATE_* environment variables
(SANIGATE_MQTT_ADDRESS, SANIGATE_HTTP_ADDRESS, SANIGATE_INFLUXDB_URL,
SANIGATE_INFLUXDB_BUCKET, SANIGATE_INFLUXDB_ORG, SANIGATE_INFLUXDB_TOKEN,
SANIGATE_SPOOL_DIR) override the file too, and flags override them.

Flags:
`)
	fs.PrintDefaults()
}

// serve runs the gateway until SIGINT or SIGTERM, then stops it in order.
func serve(cfg *fleet.Config, log *slog.Logger, pprof bool, roles gateway.Roles, stderr io.Writer) int {
	g, err := gateway.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	g.Profiling = pprof
	g.Roles = roles
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := g.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "sanigate: %v\n", err)
		return 1
	}
	<-ctx.Done()
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
