package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/gateway"
	"github.com/sanigate/sanigate/telemetry"
)

// rollupsCmd puts the InfluxDB retention layout in place, as the gateway
// does at start, and computes the minute rollups of a past span from the
// raw readings (after an upgrade, or when continuous queries were off).
func rollupsCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rollups", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "sanigate.yaml", "path of the configuration `file`")
	backfill := fs.Duration("backfill", 0, "compute the rollups of this `span` before now from the raw readings (such as 2160h for 90 days)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := rollups(context.Background(), *configPath, *backfill, stdout); err != nil {
		fmt.Fprintf(stderr, "sanigate rollups: %v\n", err)
		return 1
	}
	return 0
}

func rollups(ctx context.Context, configPath string, span time.Duration, stdout io.Writer) error {
	cfg, err := fleet.Load(configPath)
	if err != nil {
		return err
	}
	want, managed, err := gateway.RetentionOf(cfg)
	if err != nil {
		return err
	}
	if !managed {
		return fmt.Errorf("influxdb.retention is not managed by sanigate for bucket %q", cfg.InfluxDB.Bucket)
	}
	token, err := cfg.InfluxToken()
	if err != nil {
		return err
	}
	db, _, _ := strings.Cut(cfg.InfluxDB.Bucket, "/")
	a := &telemetry.InfluxAdmin{URL: cfg.InfluxDB.URL, Database: db, Token: token}
	if err := a.Ensure(ctx, want); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: retention raw %s, rollup %s, forever %s; rollup queries in place\n", db, want.Raw, want.Rollup, want.Forever)
	if span > 0 {
		to := time.Now().Truncate(time.Minute)
		if err := a.Backfill(ctx, to.Add(-span), to); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rollups computed from %s to %s\n", to.Add(-span).UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	return nil
}
