package dashboards

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/internal/influxtest"
	"github.com/sanigate/sanigate/simulators"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/violations"
)

// simDay is one simulated day of the demo city in the city's zone, and
// "now" a second before its end, where the dashboards are looked at.
type simDay struct {
	start, now time.Time
	cfg        *fleet.Config
	lines      bytes.Buffer
	tracks     map[string][]fleet.TrackPoint // sweeper id -> its track
	unloads    []telemetry.Reading           // unload_start events of trucks
}

// reportEvery is how often each kind reports in the simulated day: the
// configured intervals for fixed devices, coarser for vehicles to keep the
// test quick.
var reportEvery = map[string]time.Duration{
	"bin": 5 * time.Minute, "toilet": time.Minute, "truck": 30 * time.Second, "sweeper": 30 * time.Second,
}

// loadSimDay runs the demo fleet's simulators through a day, decodes what
// they publish as the gateway does, places it on the demo map, adds the
// points the detectors and the case store write (violations, cases, daily
// KPIs, sweeping coverage) and the weighbridges' weighings, and writes it all
// into s.
func loadSimDay(t *testing.T, s *influxtest.Server) *simDay {
	t.Helper()
	cfg, err := fleet.Load("../examples/demo/sanigate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	loc := cfg.Location()
	d := &simDay{cfg: cfg, tracks: map[string][]fleet.TrackPoint{}}
	d.start = time.Date(2026, 11, 27, 0, 0, 0, 0, loc) // a Friday
	d.now = d.start.Add(24*time.Hour - time.Second)

	d.readings(t)
	d.coverage()
	d.weighings()
	d.violations()
	d.cases()
	d.kpis()
	// The retention layout the gateway keeps, durations aside (a fixed day
	// must not fall out of a 90-day policy as the calendar moves on).
	admin := &telemetry.InfluxAdmin{URL: s.URL, Database: "sanigate"}
	if err := admin.Ensure(context.Background(), telemetry.Retention{Raw: "INF", Rollup: "INF", Forever: "INF"}); err != nil {
		t.Fatal(err)
	}
	write(t, s, d.lines.Bytes())
	if err := admin.Backfill(context.Background(), d.start, d.now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *simDay) readings(t *testing.T) {
	t.Helper()
	devs := map[string]*fleet.Device{}
	for i := range d.cfg.Devices {
		devs[d.cfg.Devices[i].ID] = &d.cfg.Devices[i]
	}
	codec := telemetry.NewCodec()
	codec.Now = func() time.Time { return d.now }
	for _, sim := range simulators.FleetFrom(d.cfg, 42) {
		dev := devs[sim.ID()]
		every, ok := reportEvery[sim.Kind()]
		if !ok {
			continue
		}
		for now := d.start; !now.After(d.now); now = now.Add(every) {
			for _, m := range sim.Step(now) {
				rs, err := codec.Decode(dev.ID, dev.Kind, m.Channel == "events", m.Payload)
				if err != nil {
					t.Fatalf("%s: %v: %s", dev.ID, err, m.Payload)
				}
				for i := range rs {
					r := &rs[i]
					d.inject(r)
					d.place(dev, r)
					d.lines.Write(telemetry.AppendLine(nil, r))
					d.remember(r)
				}
			}
		}
	}
}

// inject adds the faults the dashboards must show: a sweeper with its brush
// up for 40 minutes, another driving too fast, a bin fire alarm and lid
// openings (the simulators raise none of these by themselves).
func (d *simDay) inject(r *telemetry.Reading) {
	at := r.Time.Sub(d.start)
	between := func(a, b time.Duration) bool { return at >= a && at < b }
	switch {
	case r.Device == "sweeper-02" && between(6*time.Hour, 6*time.Hour+40*time.Minute):
		r.SetBool("brush_on", false)
	case r.Device == "sweeper-05" && between(5*time.Hour+30*time.Minute, 6*time.Hour+10*time.Minute):
		r.SetFloat("speed_kmh", 14)
	case r.Kind == "bin" && r.Event == "" && (r.Device == "bin-0042" || r.Device == "bin-0137") && at == 14*time.Hour:
		d.event(r, "fire_alarm", map[string]float64{"temp_c": 78})
	case r.Kind == "bin" && r.Event == "" && r.Device <= "bin-0010" && at%(3*time.Hour) == 0:
		d.event(r, "lid_open", map[string]float64{"fill_pct": 50})
	}
}

// event writes an event of r's device at r's time.
func (d *simDay) event(r *telemetry.Reading, name string, fields map[string]float64) {
	devs := d.cfg.Devices
	for i := range devs {
		if devs[i].ID == r.Device {
			ev := telemetry.Reading{Device: r.Device, Kind: r.Kind, Time: r.Time.Add(time.Second), Event: name}
			for k, v := range fields {
				ev.SetFloat(k, v)
			}
			d.place(&devs[i], &ev)
			d.lines.Write(telemetry.AppendLine(nil, &ev))
			return
		}
	}
}

// place sets the tags as the pipeline does: the registry's, and the district
// and site of the reading's position (or the device's registered one).
func (d *simDay) place(dev *fleet.Device, r *telemetry.Reading) {
	r.Kind = dev.Kind
	r.Contractor = dev.Contractor
	if dev.Kind == "bin" || dev.Kind == "truck" {
		r.Category = dev.Category
	}
	r.District = dev.District
	lat, okLat := r.Num("lat")
	lon, okLon := r.Num("lon")
	if (!okLat || !okLon) && dev.Lat != nil && dev.Lon != nil {
		lat, lon, okLat, okLon = *dev.Lat, *dev.Lon, true, true
	}
	if !okLat || !okLon {
		return
	}
	loc := d.cfg.Map.Locate(lat, lon)
	if loc.District != "" {
		r.District = loc.District
	}
	if len(loc.Sites) > 0 {
		r.Site = loc.Sites[0]
	}
}

func (d *simDay) remember(r *telemetry.Reading) {
	switch {
	case r.Kind == "sweeper" && r.Event == "":
		lat, _ := r.Num("lat")
		lon, _ := r.Num("lon")
		speed, _ := r.Num("speed_kmh")
		brush, _ := r.Num("brush_on")
		d.tracks[r.Device] = append(d.tracks[r.Device], fleet.TrackPoint{Time: r.Time, Lat: lat, Lon: lon, SpeedKmh: speed, BrushOn: brush != 0})
	case r.Event == "unload_start":
		d.unloads = append(d.unloads, *r)
	}
}

// line appends one line of protocol with the gateway's encoder; tags and
// fields are sorted here.
func (d *simDay) line(measurement string, tags map[string]string, fields map[string]any, at time.Time) {
	l := telemetry.StartLine(nil, measurement)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		l.Tag(k, tags[k])
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		switch v := fields[k].(type) {
		case string:
			l.String(k, v)
		case int:
			l.Int(k, int64(v))
		case float64:
			l.Float(k, v)
		case bool:
			l.Bool(k, v)
		default:
			panic(fmt.Sprintf("field %s: %T", k, v))
		}
	}
	d.lines.Write(l.End(at))
}

// coverage writes a coverage point per sweeping route, sweeper and window
// that ended within the day, measured on the sweepers' tracks.
func (d *simDay) coverage() {
	for _, r := range d.cfg.Map.SweepingRoutes {
		mid := r.Line.Bound().Center()
		district := d.cfg.Map.Locate(mid.Lat(), mid.Lon()).District
		for t := d.start; ; {
			a, b, ok := r.Schedule.Next(t)
			if !ok || b.After(d.now) {
				break
			}
			t = b
			for _, dev := range r.Sweepers {
				var track []fleet.TrackPoint
				for _, p := range d.tracks[dev] {
					if !p.Time.Before(a) && p.Time.Before(b) {
						track = append(track, p)
					}
				}
				opts := d.cfg.Coverage
				opts.OneWay = r.OneWay
				cov := r.Coverage(track, opts)
				// The length passed in a state is the coverage of the
				// samples in that state, whatever the speed.
				passed := func(in func(fleet.TrackPoint) bool) float64 {
					marked := make([]fleet.TrackPoint, len(track))
					for i, p := range track {
						p.BrushOn = in(p)
						marked[i] = p
					}
					o := opts
					o.RequireBrush = true
					return fleet.ComputeCoverage(r.Line, marked, o).CoveredM
				}
				brushOff := passed(func(p fleet.TrackPoint) bool { return !p.BrushOn })
				overSpeed := passed(func(p fleet.TrackPoint) bool { return p.SpeedKmh > r.MaxSpeedKmh })
				d.line("coverage", map[string]string{"route": r.ID, "contractor": r.Contractor, "district": district, "device": dev},
					map[string]any{"fraction": cov.Fraction, "length_m": cov.LengthM, "covered_m": cov.CoveredM,
						"brush_off_m": brushOff, "over_speed_m": overSpeed}, a)
			}
		}
	}
}

// weighings writes what a plant's weighbridge reports for each kitchen
// truck that unloaded there, a few minutes after it began: the events of
// the registered weighbridge at that site, or of one named after the site.
func (d *simDay) weighings() {
	rng := rand.New(rand.NewPCG(7, 7))
	bridge := map[string]*fleet.Device{} // site -> weighbridge
	for i := range d.cfg.Devices {
		dev := &d.cfg.Devices[i]
		if dev.Kind == "weighbridge" && dev.Lat != nil && dev.Lon != nil {
			for _, s := range d.cfg.Map.Locate(*dev.Lat, *dev.Lon).Sites {
				bridge[s] = dev
			}
		}
	}
	for i, u := range d.unloads {
		if u.Category != "kitchen" || u.Site == "" {
			continue
		}
		tags := map[string]string{"device": "wb-" + u.Site, "kind": "weighbridge", "event": "weighing", "site": u.Site, "district": u.District}
		if dev := bridge[u.Site]; dev != nil {
			tags["device"], tags["contractor"] = dev.ID, dev.Contractor
		}
		load, _ := u.Num("load_kg")
		tare := 9800 + rng.Float64()*400
		d.line("event", tags, map[string]any{"truck_id": u.Device, "gross_kg": tare + load, "tare_kg": tare, "net_kg": load,
			"weighing_seq": float64(i + 1), "stable": true}, u.Time.Add(3*time.Minute))
	}
}

// violations writes a few violations of every type, on devices of the right
// kind, spread over the day; about a third stay unresolved.
func (d *simDay) violations() {
	rng := rand.New(rand.NewPCG(8, 8))
	byKind := map[string][]*fleet.Device{}
	for i := range d.cfg.Devices {
		dev := &d.cfg.Devices[i]
		byKind[dev.Kind] = append(byKind[dev.Kind], dev)
	}
	kindOf := map[string]string{
		violations.IllegalDumping: "truck", violations.WrongSite: "truck", violations.Spillage: "truck", violations.Overload: "truck",
		violations.MixedCollection: "truck", violations.MissedRoute: "sweeper", violations.SweepingQuality: "sweeper",
		violations.BinOverflow: "bin", violations.BinFire: "bin", violations.BinDamaged: "bin", violations.SortingContamination: "bin",
		violations.LowBattery: "bin", violations.ToiletOdour: "toilet", violations.ToiletConsumables: "toilet",
		violations.ToiletSafety: "toilet", violations.ToiletLeak: "toilet", violations.ToiletCold: "toilet",
		violations.TrackingGap: "truck", violations.UnaccountedLoad: "truck",
	}
	severity := map[string]string{violations.IllegalDumping: "critical", violations.BinFire: "critical", violations.ToiletSafety: "critical",
		violations.SweepingQuality: "minor", violations.BinOverflow: "minor", violations.BinDamaged: "minor", violations.SortingContamination: "minor",
		violations.ToiletConsumables: "minor", violations.ToiletLeak: "minor", violations.ToiletCold: "minor", violations.DeviceOffline: "minor",
		violations.LowBattery: "minor"}
	routeOf := map[string]*fleet.SweepingRoute{}
	for i := range d.cfg.Map.SweepingRoutes {
		r := &d.cfg.Map.SweepingRoutes[i]
		for _, s := range r.Sweepers {
			routeOf[s] = r
		}
	}
	n := 0
	for _, typ := range violations.Types {
		for k := 0; k < 3; k++ {
			n++
			kind := kindOf[typ]
			if kind == "" { // device_offline: any kind
				kind = []string{"bin", "truck", "toilet", "sweeper"}[k%4]
			}
			devs := byKind[kind]
			dev := devs[rng.IntN(len(devs))]
			start := d.start.Add(time.Duration(1+rng.IntN(22))*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			sev := severity[typ]
			if sev == "" {
				sev = "major"
			}
			tags := map[string]string{"type": typ, "severity": sev, "device": dev.ID, "kind": dev.Kind, "contractor": dev.Contractor}
			if kind == "bin" || kind == "truck" {
				tags["category"] = dev.Category
			}
			lat, lon := 39.86+rng.Float64()*0.13, 116.31+rng.Float64()*0.18
			if dev.Lat != nil {
				lat, lon = *dev.Lat, *dev.Lon
			}
			switch typ {
			case violations.IllegalDumping:
				lat, lon = 39.8535, 116.4205 // inside the south farm's circle
			case violations.WrongSite:
				if s := d.siteCenter("landfill"); s != nil {
					lat, lon = s[0], s[1]
				}
			}
			loc := d.cfg.Map.Locate(lat, lon)
			tags["district"] = loc.District
			if len(loc.Sites) > 0 {
				tags["site"] = loc.Sites[0]
			}
			if r := routeOf[dev.ID]; r != nil && (typ == violations.MissedRoute || typ == violations.SweepingQuality) {
				tags["route"] = r.ID
				tags["contractor"] = r.Contractor
			}
			v := violations.Violation{Key: fmt.Sprintf("%s/%s/%d", typ, dev.ID, start.Unix()), Type: typ, Severity: sev,
				Device: dev.ID, Kind: dev.Kind, Contractor: tags["contractor"], Category: tags["category"],
				District: tags["district"], Site: tags["site"], Route: tags["route"],
				Start: start, End: start.Add(time.Duration(300+rng.IntN(7200)) * time.Second),
				Lat: lat, Lon: lon, HasPos: true, Summary: fmt.Sprintf("%s on %s", typ, dev.ID)}
			d.lines.Write(violations.AppendLine(nil, &v))
			if k != 0 {
				v.Resolved = true
				d.lines.Write(violations.AppendLine(nil, &v))
			}
		}
	}
}

// siteCenter is a site's centre as (lat, lon).
func (d *simDay) siteCenter(id string) []float64 {
	for _, s := range d.cfg.Map.Sites {
		if s.ID == id {
			c := s.Center
			if s.RadiusM == 0 {
				c = s.Area.Bound().Center()
			}
			return []float64{c.Lat(), c.Lon()}
		}
	}
	return nil
}

// units answer for cases: the contractors, the toilet operator, and the
// enforcement bureau.
var units = []string{"greenclean", "citybright", "enforcement", "district-office"}

// cases writes the lifecycle of forty cases over the day.
func (d *simDay) cases() {
	rng := rand.New(rand.NewPCG(9, 9))
	districts := []string{"north", "central", "south"}
	for i := 0; i < 40; i++ {
		typ := violations.Types[i%len(violations.Types)]
		sev := []string{"minor", "major", "critical"}[i%3]
		district, unit := districts[i%3], units[i%len(units)]
		id := fmt.Sprintf("C20261127-%03d", i+1)
		at := d.start.Add(time.Duration(rng.IntN(12*3600)) * time.Second)
		filed := at
		steps := []string{"filed", "dispatched", "accepted", "handled", "closed"}
		switch i % 8 {
		case 1:
			steps = []string{"filed", "dispatched", "overdue", "accepted"}
		case 3:
			steps = []string{"filed", "dispatched", "accepted", "handled", "reworked", "handled", "closed"}
		case 5:
			steps = []string{"filed", "dispatched", "transferred", "dispatched", "deferred"}
		case 6:
			steps = []string{"filed", "rejected"}
		}
		for _, action := range steps {
			d.line("case", map[string]string{"type": typ, "severity": sev, "district": district, "unit": unit, "action": action},
				map[string]any{"case_id": id, "count": 1, "overdue": action == "overdue" || i%8 == 1, "elapsed_s": at.Sub(filed).Seconds()}, at)
			at = at.Add(time.Duration(600+rng.IntN(5400)) * time.Second)
		}
	}
}

// kpis writes the daily evaluation figures of the last fourteen days per
// unit and district.
func (d *simDay) kpis() {
	rng := rand.New(rand.NewPCG(10, 10))
	for day := 13; day >= 0; day-- {
		at := d.start.AddDate(0, 0, -day)
		for _, unit := range units {
			for _, district := range []string{"north", "central", "south"} {
				due := 5 + rng.IntN(20)
				closed := due - rng.IntN(3)
				onTime := closed - rng.IntN(3)
				if onTime < 0 {
					onTime = 0
				}
				reworked, extended := rng.IntN(3), rng.IntN(2)
				f := func(a int) float64 { return float64(a) / float64(due) }
				d.line("case_kpi", map[string]string{"unit": unit, "district": district, "period": "day"}, map[string]any{
					"due": due, "closed": closed, "closed_on_time": onTime, "reworked": reworked, "extended": extended,
					"open": rng.IntN(6), "overdue": rng.IntN(3), "recurrences": rng.IntN(4),
					"closure_rate": f(closed), "on_time_rate": f(onTime), "rework_rate": f(reworked), "extension_rate": f(extended),
					"mean_accept_s": 600 + rng.Float64()*3000, "mean_close_s": 7200 + rng.Float64()*40000,
				}, at)
			}
		}
	}
}

// write posts line protocol to InfluxDB in bodies of about 4 MB, each line
// to the retention policy the gateway's writer routes it to.
func write(t *testing.T, s *influxtest.Server, lines []byte) {
	t.Helper()
	route := telemetry.RouteBucket("sanigate")
	parts := map[string][]byte{}
	for _, l := range bytes.SplitAfter(lines, []byte("\n")) {
		m, _, _ := bytes.Cut(l, []byte(","))
		m, _, _ = bytes.Cut(m, []byte(" "))
		rp := "raw"
		if route(string(m)) != "" {
			rp = telemetry.RPForever
		}
		parts[rp] = append(parts[rp], l...)
	}
	for rp, lines := range parts {
		writeRP(t, s, rp, lines)
	}
}

func writeRP(t *testing.T, s *influxtest.Server, rp string, lines []byte) {
	t.Helper()
	for len(lines) > 0 {
		n := len(lines)
		if n > 4<<20 {
			n = bytes.LastIndexByte(lines[:4<<20], '\n') + 1
		}
		resp, err := http.Post(s.URL+"/write?db=sanigate&precision=ns&rp="+rp, "text/plain", bytes.NewReader(lines[:n]))
		if err != nil {
			t.Fatal(err)
		}
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write: %s: %s", resp.Status, msg.String())
		}
		lines = lines[n:]
	}
}
