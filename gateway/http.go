package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (g *Gateway) startHTTP() error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{Registry: g.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", g.serveReady)
	mux.HandleFunc("GET /readyz/edge", g.serveEdgeReady)
	if g.cases != nil && g.Roles.Has(RoleAPI) {
		mux.Handle("/api/v1/", g.cases.Handler())
		con, err := g.consoleHandler()
		if err != nil {
			return err
		}
		mux.Handle("/", con.Handler())
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
	g.http = g.newHTTPServer(mux)
	go func() {
		if err := g.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server stopped", "error", err)
		}
	}()
	return g.startHTTPS(mux)
}

// newHTTPServer bounds every phase of a request: headers, the whole body,
// the response and the idle time of a keep-alive connection, and the size
// of any request body; a slow or idle client cannot hold a descriptor for ever.
func (g *Gateway) newHTTPServer(mux http.Handler) *http.Server {
	hc := g.cfg.HTTP
	return &http.Server{
		Handler:           limitBody(mux, hc.MaxBodyBytes),
		ReadHeaderTimeout: min(10*time.Second, hc.ReadTimeout.D()),
		ReadTimeout:       hc.ReadTimeout.D(),
		WriteTimeout:      hc.WriteTimeout.D(),
		IdleTimeout:       hc.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
}

// Ready reports the conditions that make the gateway unready, or none.
func (g *Gateway) Ready() []string {
	var problems []string
	g.readyMu.Lock()
	if g.influxOK != nil {
		problems = append(problems, "influxdb unreachable: "+g.influxOK.Error())
	}
	g.readyMu.Unlock()
	if g.broker != nil {
		problems = append(problems, g.broker.Problems()...)
	}
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
		var err error
		if g.writer != nil { // a process without the writer role does not need InfluxDB
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = g.writer.Ping(pctx)
			cancel()
		}
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

// limitBody refuses a request whose declared body is over max with 413,
// and cuts any other body (chunked) at max, on every route.
func limitBody(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}
