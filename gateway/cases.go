package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sanigate/sanigate/broker"
	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/fleet"
	"github.com/sanigate/sanigate/telemetry"
	"github.com/sanigate/sanigate/telemetry/spool"
)

// startCases opens the case store and starts the case workers (outbox,
// deadline checks).
func (g *Gateway) startCases(ctx context.Context) error {
	cfg := g.cfg
	var err error
	g.cases, err = cases.Open(ctx, g.casesCfg, cases.Deps{
		Calendar: cfg.WorkCalendar, Location: cfg.Location(), Publisher: g.broker, Points: spoolPoints{g.spool},
		Devices:    directory{reg: g.registry, pipeline: g.pipeline, broker: g.broker, polled: g.polledRecently},
		Registerer: g.reg, Logger: g.log.With("component", "cases"), Dir: filepath.Dir(cfg.File),
		Fleet: cfg, OnRegistryChange: g.registryChanged,
	})
	if err != nil {
		return err // it names the store and its setting
	}
	svc := g.cases
	if err := g.seedRegistry(ctx); err != nil {
		return fmt.Errorf("device registry: %w", err)
	}
	g.sup.start(component{name: "cases", run: svc.Run})
	g.sup.start(component{name: "registry", run: g.pollRegistry})
	return nil
}

// spoolPoints sends case events and KPIs to InfluxDB through the spool, so
// that they survive an InfluxDB outage like readings do.
type spoolPoints struct{ sp *spool.Spool }

func (s spoolPoints) WriteLines(_ context.Context, lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	if err := s.sp.AppendReserved(lines); err != nil {
		return fmt.Errorf("case points: %w", err)
	}
	return nil
}

// directory answers the API's questions about devices from the registry,
// the pipeline's latest readings and the broker's connections.
type directory struct {
	reg      *fleet.Registry
	pipeline *telemetry.Pipeline
	broker   *broker.Broker
	polled   func(string) bool
}

func (d directory) Devices() []cases.DeviceInfo {
	devs := d.reg.Devices()
	slices.SortFunc(devs, func(a, b *fleet.Device) int { return strings.Compare(a.ID, b.ID) })
	out := make([]cases.DeviceInfo, 0, len(devs))
	for _, dev := range devs {
		info := cases.DeviceInfo{ID: dev.ID, Kind: dev.Kind, District: dev.District, Contractor: dev.Contractor, Category: dev.Category}
		if dev.Lat != nil && dev.Lon != nil {
			info.Lat, info.Lon, info.HasPos = *dev.Lat, *dev.Lon, true
		}
		if r, ok := d.pipeline.Last(dev.ID); ok {
			if r.District != "" {
				info.District = r.District
			}
			info.Site = r.Site
			if lat, ok := r.Num("lat"); ok {
				if lon, ok := r.Num("lon"); ok {
					info.Lat, info.Lon, info.HasPos = lat, lon, true
				}
			}
		}
		info.Online = d.broker.Online(dev.ID) || (d.polled != nil && d.polled(dev.ID))
		out = append(out, info)
	}
	return out
}

func (d directory) LastReading(id string) (cases.Reading, bool) {
	r, ok := d.pipeline.Last(id)
	if !ok {
		return cases.Reading{}, false
	}
	out := cases.Reading{Time: r.Time, Fields: map[string]float64{}}
	for _, f := range r.Fields {
		if f.Type == telemetry.String {
			if out.Text == nil {
				out.Text = map[string]string{}
			}
			out.Text[f.Name] = f.Str
			continue
		}
		out.Fields[f.Name] = f.Num
	}
	return out, true
}
