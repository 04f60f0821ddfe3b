package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/drivers/modbus"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/violations"
)

// ErrReloadRefused is returned by Reload when the new configuration has
// problems: nothing of it was applied and the running one stays.
var ErrReloadRefused = errors.New("configuration refused; the running configuration stays")

// ReloadReport says what a reload did.
type ReloadReport struct {
	// Applied is true when the new configuration is in force.
	Applied bool `json:"applied"`
	// Problems lists every problem of a refused configuration.
	Problems []string `json:"problems,omitempty"`
	// NeedsRestart names the settings that changed but take effect only at
	// the next start; they were not applied.
	NeedsRestart []string `json:"needs_restart,omitempty"`
	// Devices added, removed (or disabled: their connections were closed)
	// and changed, by id.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// RegistryManaged lists devices of the file that the device registry
	// manages (changed through the API or the command line): their entries
	// in the file were not applied.
	RegistryManaged []string `json:"registry_managed,omitempty"`
	// Modbus names the polled devices whose polling started, stopped or
	// changed.
	Modbus *fleet.Change `json:"modbus,omitempty"`
}

// liveConfig is the configuration in force: the start configuration's
// listeners, stores and other restart-only settings, with the devices, map,
// routes, thresholds, units and dispatch rules of the last reload. Its
// Devices are the merged device set (the file's seed and the registry).
func (g *Gateway) liveConfig() *fleet.Config {
	if c := g.live.Load(); c != nil {
		return c
	}
	return g.cfg
}

// Reload reads the configuration file again, checks all of it, and applies
// at once what can change while running: devices, places, routes and their
// schedules, detector thresholds and kind intervals, units, dispatch
// rules, deadlines, API tokens, GPS filter limits and Modbus polling. A
// configuration with any problem is refused whole (ErrReloadRefused, with
// every problem in the report) and the running one stays. Settings that
// need a restart (listeners, TLS, InfluxDB, spool, ingest limits, cluster,
// console, the case store, the city's zone and calendar) are named in the
// report and not applied. Devices removed or disabled lose their
// connections at once, and Modbus devices no longer polled lose theirs;
// the connections of every other device, MQTT or Modbus, are not touched.
// Reload is safe to call from any goroutine (SIGHUP, the admin API);
// reloads run one at a time.
func (g *Gateway) Reload(ctx context.Context) (ReloadReport, error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	rep, err := g.reload(ctx)
	log := g.log.With("component", "reload")
	switch {
	case err != nil:
		log.Warn("configuration reload refused; the running configuration stays", "problems", len(rep.Problems), "error", err)
	default:
		log.Info("configuration reloaded", "added", len(rep.Added), "removed", len(rep.Removed), "changed", len(rep.Changed),
			"needs_restart", rep.NeedsRestart, "registry_managed", len(rep.RegistryManaged))
	}
	if g.reloads != nil {
		result := "applied"
		if err != nil {
			result = "refused"
		}
		g.reloads.WithLabelValues(result).Inc()
	}
	return rep, err
}

func (g *Gateway) reload(ctx context.Context) (ReloadReport, error) {
	var rep ReloadReport
	refuse := func(err error) (ReloadReport, error) {
		var ps fleet.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				rep.Problems = append(rep.Problems, p.String())
			}
		} else {
			rep.Problems = []string{err.Error()}
		}
		return rep, fmt.Errorf("%w: %w", ErrReloadRefused, err)
	}
	next, err := fleet.Load(g.cfg.File)
	if err != nil {
		return refuse(err)
	}
	if g.Overrides != nil {
		g.Overrides(next)
	}
	old := g.cfg
	rep.NeedsRestart = restartOnly(old, next)
	// What needs a restart keeps its running value.
	eff := *next
	eff.MQTT, eff.HTTP, eff.InfluxDB, eff.Spool, eff.Ingest = old.MQTT, old.HTTP, old.InfluxDB, old.Spool, old.Ingest
	eff.Cluster, eff.Console, eff.City = old.Cluster, old.Console, old.City
	eff.Calendar, eff.WorkCalendar = old.Calendar, old.WorkCalendar
	detCfg := violations.FromConfig(&eff)

	var rules *cases.RulesUpdate
	if g.cases != nil {
		if rules, err = g.cases.PrepareReload(cases.FromConfig(&eff)); err != nil {
			return refuse(err)
		}
		rep.NeedsRestart = append(rep.NeedsRestart, rules.NeedsRestart...)
	}
	devices := eff.Devices
	if g.cases != nil {
		res, err := g.cases.SyncConfigDevices(ctx, eff.Devices)
		if err != nil {
			return refuse(err)
		}
		rep.RegistryManaged = res.Kept
		merged, version, err := g.registryDevices(ctx)
		if err != nil {
			return refuse(err)
		}
		devices = merged
		g.regVersion.Store(version)
	}
	pollBefore, pollAfter, err := g.reloadModbus(modbus.FromConfig(next))
	if err != nil {
		return refuse(err)
	}
	// Everything is built: install it.
	eff.Devices = devices
	if rules != nil {
		rules.Apply()
	}
	g.liveDet.Store(&detCfg)
	if g.gps != nil {
		g.gps.Set(gpsConfig(&eff))
	}
	pollBefore()
	ch := g.installDevices(&eff)
	if mc := pollAfter(); !mc.Empty() {
		rep.Modbus = &mc
	}
	if g.console != nil {
		// The places were read and checked by Load; a file that went
		// missing since leaves the console's map as it was.
		if err := g.console.SetLayers(mapLayers(&eff)); err != nil {
			g.log.Warn("console map not updated", "component", "reload", "error", err)
		}
	}
	rep.Applied = true
	rep.Added, rep.Removed, rep.Changed = ch.Added, ch.Removed, ch.Changed
	slices.Sort(rep.NeedsRestart)
	return rep, nil
}

// installDevices makes cfg (whose Devices are the merged set) the live
// configuration: the fleet registry (broker logins, decoding), the map
// used to place readings, the detectors. Devices that left lose their
// connections, after the swap so that they cannot log in again meanwhile.
func (g *Gateway) installDevices(cfg *fleet.Config) fleet.Change {
	g.live.Store(cfg)
	ch := g.registry.Replace(cfg.Devices)
	if g.detectors != nil {
		g.detectors.Reload(cfg, g.liveDetCfg())
	}
	for _, e := range g.partEngines {
		e.Reload(cfg, g.liveDetCfg())
	}
	if g.broker != nil {
		for _, id := range ch.Removed {
			g.broker.Disconnect(id)
		}
	}
	return ch
}

// liveDetCfg is the detector thresholds in force.
func (g *Gateway) liveDetCfg() violations.Config {
	if p := g.liveDet.Load(); p != nil {
		return *p
	}
	return g.detCfg
}

// registryDevices reads the enabled devices of the registry and the
// version they were read at.
func (g *Gateway) registryDevices(ctx context.Context) ([]fleet.Device, int64, error) {
	rows, version, err := g.cases.RegisteredDevices(ctx)
	if err != nil {
		return nil, 0, err
	}
	out := make([]fleet.Device, 0, len(rows))
	for _, r := range rows {
		if !r.Disabled {
			out = append(out, r.Device)
		}
	}
	return out, version, nil
}

// seedRegistry brings the registry in step with the file at start and
// installs the merged device set, before the broker lets devices in.
func (g *Gateway) seedRegistry(ctx context.Context) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	res, err := g.cases.SyncConfigDevices(ctx, g.cfg.Devices)
	if err != nil {
		return err
	}
	if len(res.Kept) > 0 {
		g.log.Info("devices of the file managed by the device registry; their entries in the file are not applied",
			"component", "registry", "devices", len(res.Kept))
	}
	devices, version, err := g.registryDevices(ctx)
	if err != nil {
		return err
	}
	g.regVersion.Store(version)
	eff := *g.cfg
	eff.Devices = devices
	g.installDevices(&eff)
	return nil
}

// pollRegistry applies changes other gateways (or `sanigate device`) made
// to a shared device registry: it reads the registry's version every
// registry poll (cases.store.registry_poll) and the devices when it moved.
func (g *Gateway) pollRegistry(ctx context.Context) error {
	t := time.NewTicker(g.registryPoll())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-g.regKick:
		}
		if err := g.refreshRegistry(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("device registry poll failed; the devices in force stay", "component", "registry", "error", err)
		}
	}
}

// refreshRegistry installs the registry's devices if its version moved.
func (g *Gateway) refreshRegistry(ctx context.Context) error {
	v, err := g.cases.RegistryVersion(ctx)
	if err != nil || v == g.regVersion.Load() {
		return err
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	devices, version, err := g.registryDevices(ctx)
	if err != nil {
		return err
	}
	eff := *g.liveConfig()
	eff.Devices = devices
	ch := g.installDevices(&eff)
	g.regVersion.Store(version)
	if !ch.Empty() {
		g.log.Info("device registry changed", "component", "registry", "added", ch.Added, "removed", ch.Removed, "changed", len(ch.Changed))
	}
	return nil
}

// registryChanged applies a change the local API made to the registry at
// once, from the request's goroutine, so that the answer comes after the
// change is in force here; on failure the poll loop tries again.
func (g *Gateway) registryChanged() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.refreshRegistry(ctx); err != nil {
		g.log.Warn("device registry change not applied yet; the poll tries again", "component", "registry", "error", err)
		select {
		case g.regKick <- struct{}{}:
		default:
		}
	}
}

func (g *Gateway) registryPoll() time.Duration {
	if p := g.casesCfg.Store.RegistryPoll; p > 0 {
		return p
	}
	return cases.DefaultRegistryPoll
}

// restartOnly names the settings that differ between old and next but are
// read only at start.
func restartOnly(old, next *fleet.Config) []string {
	var out []string
	check := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	check("mqtt", old.MQTT, next.MQTT)
	check("http", old.HTTP, next.HTTP)
	check("influxdb", old.InfluxDB, next.InfluxDB)
	check("spool", old.Spool, next.Spool)
	check("ingest", old.Ingest, next.Ingest)
	check("cluster", old.Cluster, next.Cluster)
	check("console", old.Console, next.Console)
	check("city", old.City, next.City)
	check("calendar", old.Calendar, next.Calendar)
	return out
}
