package gateway

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// startWriter starts the InfluxDB writer, the spool's first consumer, and the
// readiness watch that pings InfluxDB.
func (g *Gateway) startWriter(tm *telemetry.Metrics) error {
	cfg := g.cfg
	if !g.Roles.Has(RoleWriter) {
		// A process without the writer role does not need InfluxDB.
		g.sup.start(component{name: "readiness", run: func(ctx context.Context) error {
			g.watchReadiness(ctx)
			return nil
		}})
		return nil
	}
	cons, err := g.spool.Consumer("influxdb")
	if err != nil {
		return err
	}
	g.sm.Watch(g.spool, cons)
	token, err := cfg.InfluxToken()
	if err != nil {
		return err
	}
	route, err := g.ensureRetention(token)
	if err != nil {
		return err
	}
	g.writer = telemetry.NewWriter(cons, telemetry.WriterOptions{
		URL: cfg.InfluxDB.URL, Org: cfg.InfluxDB.Org, Bucket: cfg.InfluxDB.Bucket, Token: token,
		BatchSize: cfg.InfluxDB.BatchSize, FlushInterval: cfg.InfluxDB.FlushInterval.D(), Timeout: cfg.InfluxDB.Timeout.D(),
		DeadLetterFile: filepath.Join(cfg.Resolve(cfg.Spool.Dir), "dead-letter.lp"),
		Metrics:        tm, Logger: g.log.With("component", "writer"),
		Route: route, Gzip: cfg.InfluxDB.Gzip(),
	})
	g.history = &influxReadback{url: cfg.InfluxDB.URL, bucket: cfg.InfluxDB.Bucket, token: token, route: route,
		client: &http.Client{Timeout: 30 * time.Second}, sp: g.spool, writer: cons, settle: 10 * time.Second}
	w := g.writer
	g.sup.start(component{name: "writer", run: func(ctx context.Context) error {
		err := w.Run(ctx)
		if err != nil {
			// Read again, from the cursor, what was read but not delivered.
			cons.Rewind()
		}
		return err
	}})
	g.sup.start(component{name: "readiness", run: func(ctx context.Context) error {
		g.watchReadiness(ctx)
		return nil
	}})
	return nil
}

// watchReadiness pings InfluxDB every few seconds.
func (g *Gateway) watchReadiness(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		var err error
		if g.writer != nil {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = g.writer.Ping(pctx)
			cancel()
		}
		g.readyMu.Lock()
		g.influxOK = err
		g.readyMu.Unlock()
		g.sm.Update()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
