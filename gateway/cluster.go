package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/violations"
)

// Role is a part of the gateway that cluster mode may run or leave out.
type Role string

// The roles of one sanigate process.
const (
	// RoleEdge takes device input: the MQTT broker, Modbus polling, and in
	// cluster mode the forwarder from the spool to the shared stream.
	RoleEdge Role = "edge"
	// RoleDetect runs the violation detectors.
	RoleDetect Role = "detect"
	// RoleWriter writes the spool to InfluxDB.
	RoleWriter Role = "writer"
	// RoleAPI serves the case API under /api/v1 (health and metrics are
	// served whatever the roles).
	RoleAPI Role = "api"
)

// AllRoles are the roles a process runs by default.
var AllRoles = Roles{RoleEdge, RoleDetect, RoleWriter, RoleAPI}

// Roles is a set of roles; the empty set means all of them.
type Roles []Role

// ParseRoles reads a comma-separated list such as "edge,api".
func ParseRoles(s string) (Roles, error) {
	var rs Roles
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		r := Role(f)
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("unknown role %q (roles: edge, detect, writer, api)", f)
		}
		if !slices.Contains(rs, r) {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("no role in %q", s)
	}
	return rs, nil
}

// Has reports whether r is in the set (every role is in the empty set).
func (rs Roles) Has(r Role) bool { return len(rs) == 0 || slices.Contains(rs, r) }

// All reports whether the set holds every role.
func (rs Roles) All() bool {
	for _, r := range AllRoles {
		if !rs.Has(r) {
			return false
		}
	}
	return true
}

// ClusterOptions is the configuration of the forwarder from cfg's cluster
// section with defaults applied, and every problem in the section. The
// second result is false in single-machine mode (no NATS URL).
func ClusterOptions(cfg *fleet.Config) (cluster.ForwarderOptions, bool, error) {
	cc := cfg.Cluster
	if len(cc.NATS) == 0 {
		return cluster.ForwarderOptions{}, false, nil
	}
	var ps fleet.Problems
	add := func(field, format string, args ...any) {
		ps.Add(cfg.File, cfg.Pos["cluster."+field], "cluster."+field, format, args...)
	}
	for i, u := range cc.NATS {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || !slices.Contains([]string{"nats", "tls"}, pu.Scheme) {
			ps.Add(cfg.File, cfg.Pos[fmt.Sprintf("cluster.nats[%d]", i)], fmt.Sprintf("cluster.nats[%d]", i),
				"%q is not a NATS URL (nats://host:port or tls://host:port)", u)
		}
	}
	replicas := cc.Replicas
	if replicas == 0 {
		replicas = 1
		if len(cc.NATS) >= 3 {
			replicas = 3
		}
	}
	if replicas < 1 || replicas > 5 {
		add("replicas", "%d replicas: JetStream keeps 1 to 5", cc.Replicas)
	}
	if cc.Partitions < 0 || cc.Partitions > 1024 {
		add("partitions", "%d partitions: use 1 to 1024", cc.Partitions)
	}
	if cc.Window < 0 {
		add("window", "must not be negative")
	}
	if cc.MaxBytes < 0 {
		add("max_bytes", "must not be negative")
	}
	for field, d := range map[string]fleet.Duration{"duplicate_window": cc.DuplicateWindow, "ack_timeout": cc.AckTimeout,
		"lease_ttl": cc.LeaseTTL, "replay": cc.Replay, "retention": cc.Retention, "snapshot_every": cc.SnapshotEvery} {
		if d < 0 {
			add(field, "must not be negative")
		}
	}
	if cc.LeaseTTL > 0 && cc.LeaseTTL.D() < time.Second {
		add("lease_ttl", "%s is too short to renew a lease in time (1s at least)", cc.LeaseTTL.D())
	}
	if err := ps.Err(); err != nil {
		return cluster.ForwarderOptions{}, true, err
	}
	return cluster.ForwarderOptions{
		URLs: cc.NATS,
		Stream: cluster.StreamOptions{
			Name: cc.Stream, Partitions: cc.Partitions, Replicas: replicas, DuplicateWindow: cc.DuplicateWindow.D(),
			MaxAge: cc.Retention.D(), MaxBytes: cc.MaxBytes,
		}.WithDefaults(),
		Select:     cluster.SelectReadings,
		Window:     cc.Window,
		AckTimeout: time.Duration(cc.AckTimeout),
	}, true, nil
}

// CheckRoles refuses a subset of roles in single-machine mode, where one
// process must do everything.
func CheckRoles(cfg *fleet.Config, rs Roles) error {
	if rs.All() || len(cfg.Cluster.NATS) > 0 {
		return nil
	}
	return fmt.Errorf("roles %v need cluster mode (cluster.nats in the configuration); alone, a gateway runs every role", rs)
}

// startCluster starts, in cluster mode, the forwarder from the spool to the
// stream (edge role), which runs under g.wg and stops with the writer, and
// detection as partition owner (detect role), which stops where the local
// detectors do.
func (g *Gateway) startCluster(ctx context.Context) error {
	fo, on, err := ClusterOptions(g.cfg)
	if err != nil || !on {
		return err
	}
	if g.Roles.Has(RoleEdge) {
		if err := g.startForwarder(ctx, fo); err != nil {
			return err
		}
	}
	if g.Roles.Has(RoleDetect) {
		return g.startClusterDetector(ctx, fo)
	}
	return nil
}

func (g *Gateway) startForwarder(ctx context.Context, fo cluster.ForwarderOptions) error {
	cons, err := g.spool.Consumer("cluster")
	if err != nil {
		return err
	}
	g.sm.Watch(g.spool, cons)
	fo.Registerer, fo.Logger = g.reg, g.log.With("component", "cluster")
	f, err := cluster.NewForwarder(cons, fo)
	if err != nil {
		return err
	}
	g.forwarder = f
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f.Run(ctx); err != nil {
			g.log.Error("forwarder stopped", "error", err)
		}
	}()
	return nil
}

// startClusterDetector runs detection on the partitions this process holds
// a lease on, with one engine each, raising into the same sink as the
// single-machine detectors (the spool, for InfluxDB, and the case store).
func (g *Gateway) startClusterDetector(ctx context.Context, fo cluster.ForwarderOptions) error {
	raised := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sanigate_violations_total", Help: "Violations the detectors raised, by type and severity.",
	}, []string{"type", "severity"})
	g.reg.MustRegister(raised)
	log := g.log.With("component", "detect")
	sink := violationSink{sp: g.spool, cases: g.cases, log: g.log.With("component", "violations"), raised: raised}
	cc := g.cfg.Cluster
	id := cc.DetectorID
	if id == "" {
		host, _ := os.Hostname()
		id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	d, err := cluster.NewDetector(cluster.DetectorOptions{
		URLs: fo.URLs, Stream: fo.Stream, ID: id, LeaseTTL: cc.LeaseTTL.D(), Replay: cc.Replay.D(), SnapshotEvery: cc.SnapshotEvery.D(),
		Lateness: g.detCfg.Lateness.D(), Sink: sink, Logger: log, Registerer: g.reg,
		Engine: func(p int, s violations.Sink) *violations.Engine {
			// Built and recorded under reloadMu, so that a reload reaches
			// every partition's engine, this one included.
			g.reloadMu.Lock()
			defer g.reloadMu.Unlock()
			// It watches the devices of its partition alone, so that one
			// never heard from is flagged offline by one engine, not all.
			n := fo.Stream.Partitions
			e := violations.NewEngine(g.liveConfig(), g.liveDetCfg(), s, violations.EngineOptions{
				Shards: 1, Logger: log.With("partition", p),
				Watch: func(id string) bool { return cluster.Partition(id, n) == p }})
			if g.partEngines == nil {
				g.partEngines = map[int]*violations.Engine{}
			}
			g.partEngines[p] = e
			return e
		},
	})
	if err != nil {
		return err
	}
	g.clusterDet = d
	// Stopped where the single-machine detectors are, before the case store
	// closes, so that nothing is raised into a closed store.
	detCtx, detCancel := context.WithCancel(context.WithoutCancel(ctx))
	g.detCancel = detCancel
	g.detWG.Add(1)
	go func() {
		defer g.detWG.Done()
		if err := d.Run(detCtx); err != nil {
			g.log.Error("cluster detection stopped", "error", err)
		}
	}()
	return nil
}

// Forwarder is the forwarder to the cluster's stream, or nil in
// single-machine mode.
func (g *Gateway) Forwarder() *cluster.Forwarder { return g.forwarder }

// ClusterDetector is the partition-owning detector, or nil when this process
// does not detect in cluster mode.
func (g *Gateway) ClusterDetector() *cluster.Detector { return g.clusterDet }

// EdgeReady reports what makes this process unfit to take device
// connections, or nothing: the edge role is off, or the spool is full. It
// leaves out InfluxDB and NATS, whose outages the spool rides out, so that a
// load balancer checking /readyz/edge does not turn every gateway away at
// once when a shared service is down.
func (g *Gateway) EdgeReady() []string {
	var problems []string
	if !g.Roles.Has(RoleEdge) {
		problems = append(problems, "edge role off: this process takes no device connections")
	}
	if g.spool != nil && g.spool.Full() {
		problems = append(problems, "spool full: publishers are being pushed back")
	}
	return problems
}

func (g *Gateway) serveEdgeReady(w http.ResponseWriter, _ *http.Request) {
	writeReadiness(w, g.EdgeReady())
}

// forwardWill sends a device's last will to its partition's detector in
// cluster mode (the local detectors take it alone). It does not block the
// broker: the send runs on its own goroutine, bounded by a timeout.
func (g *Gateway) forwardWill(device string) {
	f := g.forwarder
	if f == nil {
		return
	}
	at := time.Now()
	go func() {
		// Tried for a minute: the stream may be electing a leader, or the
		// connection coming back. The message id makes a repeat harmless.
		deadline := time.Now().Add(time.Minute)
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := f.Offline(ctx, device, at)
			cancel()
			if err == nil {
				return
			}
			if time.Now().Add(wait).After(deadline) {
				g.log.Warn("last will not forwarded", "device", device, "error", err)
				return
			}
			time.Sleep(wait)
		}
	}()
}
