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

	"github.com/sanigate/sanigate/cases"
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
	mux.HandleFunc("GET /readyz/edge", g.serveEdgeReady)
	if g.cases != nil && g.Roles.Has(RoleAPI) {
		mux.Handle("/api/v1/", g.cases.Handler())
		mux.Handle("POST /api/v1/admin/reload", g.cases.Admin(g.serveReload))
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
		return listenError("http", g.cfg.HTTP.Address, err)
	}
	g.httpLn, g.httpFirst = ln, ln
	srv := g.newHTTPServer(mux)
	for _, f := range onShutdown {
		srv.RegisterOnShutdown(f)
	}
	g.sup.start(component{name: "http", run: func(ctx context.Context) error { return g.serveHTTP(ctx, srv) }})
	return g.startHTTPS(mux)
}

// serveHTTP serves until ctx ends. Serve itself waits out temporary accept
// errors (descriptors exhausted); after any other failure the supervisor
// runs serveHTTP again, which listens again on the same address.
func (g *Gateway) serveHTTP(ctx context.Context, srv *http.Server) error {
	ln := g.takeHTTPListener()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", g.HTTPAddr()); err != nil {
			return listenError("http", g.HTTPAddr(), err)
		}
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if ctx.Err() == nil {
		return errors.New("http server closed")
	}
	return nil
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

// takeHTTPListener hands the listener Start opened to the first serveHTTP.
func (g *Gateway) takeHTTPListener() net.Listener {
	g.readyMu.Lock()
	defer g.readyMu.Unlock()
	ln := g.httpFirst
	g.httpFirst = nil
	return ln
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
	if g.sup != nil {
		problems = append(problems, g.sup.Down()...)
	}
	if g.writer != nil {
		if failing, why := g.writer.Failing(); failing {
			problems = append(problems, "influxdb writes failing: "+why)
		}
	}
	return problems
}

// serveReload serves POST /api/v1/admin/reload (administrators' tokens):
// 200 with the report when the configuration was applied, 422 with every
// problem when it was refused and the running one stays.
func (g *Gateway) serveReload(w http.ResponseWriter, r *http.Request, who cases.Actor) {
	g.log.Info("configuration reload asked through the API", "component", "reload", "by", who.Name)
	rep, err := g.Reload(r.Context())
	status := http.StatusOK
	if err != nil {
		status = http.StatusUnprocessableEntity
		if !errors.Is(err, ErrReloadRefused) {
			status = http.StatusInternalServerError
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}

func (g *Gateway) serveReady(w http.ResponseWriter, _ *http.Request) { writeReadiness(w, g.Ready()) }

// writeReadiness answers a readiness check: 200 with no problems, else 503
// with the list.
func writeReadiness(w http.ResponseWriter, problems []string) {
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": len(problems) == 0, "problems": problems})
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
