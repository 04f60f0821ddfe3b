package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (g *Gateway) startHTTP() error {
	mux := http.NewServeMux()
	var onShutdown []func()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{Registry: g.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", g.serveReady)
	if g.cases != nil {
		mux.Handle("/api/v1/", g.cases.Handler())
		con, err := g.consoleHandler()
		if err != nil {
			return err
		}
		mux.Handle("/", con.Handler())
		onShutdown = append(onShutdown, con.Close)
	}
	if g.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", g.cfg.HTTP.Address)
	if err != nil {
		return err
	}
	g.httpLn = ln
	g.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	for _, f := range onShutdown {
		g.http.RegisterOnShutdown(f)
	}
	go func() {
		if err := g.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

// Ready reports the conditions that make the gateway unready, or none.
func (g *Gateway) Ready() []string {
	var problems []string
	g.readyMu.Lock()
	if g.influxOK != nil {
		problems = append(problems, "influxdb unreachable: "+g.influxOK.Error())
	}
	g.readyMu.Unlock()
	if g.spool != nil && g.spool.Full() {
		problems = append(problems, "spool full: publishers are being pushed back until InfluxDB drains it")
	}
	if g.writer != nil {
		if failing, why := g.writer.Failing(); failing {
			problems = append(problems, "influxdb writes failing: "+why)
		}
	}
	return problems
}

func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	problems := g.Ready()
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": len(problems) == 0, "problems": problems})
}

// watchReadiness pings InfluxDB every few seconds.
func (g *Gateway) watchReadiness(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := g.writer.Ping(pctx)
		cancel()
		g.readyMu.Lock()
		g.influxOK = err
		g.readyMu.Unlock()
		g.sm.update()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
