package gateway

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sanigate/sanigate/cluster"
	"github.com/sanigate/sanigate/fleet"
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
	if cc.DuplicateWindow < 0 || cc.AckTimeout < 0 {
		add("duplicate_window", "durations must not be negative")
	}
	if err := ps.Err(); err != nil {
		return cluster.ForwarderOptions{}, true, err
	}
	return cluster.ForwarderOptions{
		URLs: cc.NATS,
		Stream: cluster.StreamOptions{
			Name: cc.Stream, Partitions: cc.Partitions, Replicas: replicas, DuplicateWindow: cc.DuplicateWindow.D(),
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

// startForwarder starts forwarding the spool to the cluster's stream when
// the configuration names NATS servers and the process has the edge role.
// It runs under g.wg and stops with the writer, before the spool closes.
func (g *Gateway) startForwarder(ctx context.Context) error {
	fo, on, err := ClusterOptions(g.cfg)
	if err != nil || !on || !g.Roles.Has(RoleEdge) {
		return err
	}
	cons, err := g.spool.Consumer("cluster")
	if err != nil {
		return err
	}
	g.sm.watch(g.spool, cons)
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

// Forwarder is the forwarder to the cluster's stream, or nil in
// single-machine mode.
func (g *Gateway) Forwarder() *cluster.Forwarder { return g.forwarder }
