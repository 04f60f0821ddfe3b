package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
)

// RetentionOf returns the retention the configuration asks for, with
// defaults, and whether the gateway manages it: not when switched off, nor
// when the bucket names a retention policy ("database/policy") of its own.
func RetentionOf(cfg *fleet.Config) (telemetry.Retention, bool, error) {
	rc := cfg.InfluxDB.Retention
	r := telemetry.DefaultRetention()
	if rc.Raw != "" {
		r.Raw = rc.Raw
	}
	if rc.Rollup != "" {
		r.Rollup = rc.Rollup
	}
	if rc.Forever != "" {
		r.Forever = rc.Forever
	}
	if err := r.Validate(); err != nil {
		return r, false, err
	}
	return r, rc.Managed() && !strings.Contains(cfg.InfluxDB.Bucket, "/"), nil
}

// retention keeps the InfluxDB layout and tells the writer where each
// measurement goes. Until the layout is known to be in place, every line
// goes to the configured bucket.
type retention struct {
	admin   *telemetry.InfluxAdmin
	want    telemetry.Retention
	managed atomic.Bool
	route   func(string) string
}

// ensureRetention tries once, briefly, to put the layout in place, and if
// InfluxDB does not answer keeps trying in the background until it does
// (the gateway starts and spools meanwhile). It returns the writer's route.
func (g *Gateway) ensureRetention(token string) (func(string) string, error) {
	want, managed, err := RetentionOf(g.cfg)
	if err != nil {
		return nil, err
	}
	if !managed {
		return nil, nil
	}
	r := &retention{
		admin: &telemetry.InfluxAdmin{URL: g.cfg.InfluxDB.URL, Database: g.cfg.InfluxDB.Bucket, Token: token,
			Client: &http.Client{Timeout: 10 * time.Second}, Logger: g.log.With("component", "retention")},
		want:  want,
		route: telemetry.RouteBucket(g.cfg.InfluxDB.Bucket),
	}
	ctx, stop := context.WithCancel(context.Background())
	g.retentionStop = stop
	if !r.try(ctx) {
		go r.retry(ctx) // ends when Close calls retentionStop
	}
	return func(m string) string {
		if !r.managed.Load() {
			return ""
		}
		return r.route(m)
	}, nil
}

// try returns true once the outcome is settled: the layout is in place,
// or InfluxDB is one the gateway does not manage.
func (r *retention) try(ctx context.Context) bool {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := r.admin.Ensure(tctx, r.want)
	switch {
	case err == nil:
		r.managed.Store(true)
		return true
	case errors.Is(err, telemetry.ErrNotManaged):
		return true
	}
	r.admin.Logger.Warn("influxdb retention not checked yet; will retry", "error", err)
	return false
}

func (r *retention) retry(ctx context.Context) {
	wait := 2 * time.Second
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if r.try(ctx) {
			return
		}
		wait = min(wait*2, time.Minute)
	}
}
