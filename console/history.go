package console

import (
	"context"
	"sort"
	"time"

	"github.com/sanigate/sanigate/cases"
)

// Point is one stored reading of a device.
type Point struct {
	Time   time.Time
	Fields map[string]float64
}

// History reads a device's stored readings; the gateway fills it from
// InfluxDB. It is called from page handlers with a short deadline.
type History interface {
	Readings(ctx context.Context, kind, device string, from, to time.Time) ([]Point, error)
}

// Around the event: how far before and after a case's span the track and
// curves reach, and the longest span read.
const (
	historyMargin = 10 * time.Minute
	historyMax    = 3 * time.Hour
	maxSeries     = 4
)

// withHistory adds the device's stored track and curves around the case's
// span to what its evidence shows: the stored track replaces the evidence's
// positions when it has more, and stored fields the evidence lacks become
// curves.
func (c *Console) withHistory(ctx context.Context, cs *cases.Case, ev *evidence) {
	if c.opt.History == nil || cs.Device == "" || cs.Kind == "" || cs.FirstSeen.IsZero() {
		return
	}
	from, to := cs.FirstSeen.Add(-historyMargin), cs.LastSeen.Add(historyMargin)
	if to.Sub(from) > historyMax {
		to = from.Add(historyMax)
	}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	pts, err := c.opt.History.Readings(hctx, cs.Kind, cs.Device, from, to)
	if err != nil {
		c.log.Warn("console: stored readings not read", "case", cs.ID, "device", cs.Device, "err", err)
		return
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].Time.Before(pts[j].Time) })
	var track [][3]float64
	byName := map[string]*series{}
	var names []string
	for _, p := range pts {
		ts := float64(p.Time.UnixMilli()) / 1000
		lat, okLat := p.Fields["lat"]
		lon, okLon := p.Fields["lon"]
		if okLat && okLon {
			track = append(track, [3]float64{lat, lon, ts})
		}
		for k, v := range p.Fields {
			if curveSkip[k] {
				continue
			}
			s := byName[k]
			if s == nil {
				s = &series{Name: k}
				byName[k] = s
				names = append(names, k)
			}
			s.Points = append(s.Points, [2]float64{ts, v})
		}
	}
	if len(track) > len(ev.Track) {
		ev.Track = track
	}
	have := map[string]bool{}
	for _, s := range ev.Series {
		have[s.Name] = true
	}
	sort.Strings(names)
	for _, n := range names {
		if len(ev.Series) >= maxSeries {
			break
		}
		if !have[n] && len(byName[n].Points) >= 2 {
			ev.Series = append(ev.Series, *byName[n])
		}
	}
}
