package console

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/sanigate/sanigate/cases"
)

// Fill levels at and above which a bin counts as full, in percent.
const fullPercent = 90

// fleetDevice is one device on the fleet map.
type fleetDevice struct {
	ID       string             `json:"id"`
	Kind     string             `json:"kind"`
	District string             `json:"district,omitempty"`
	Lat      float64            `json:"lat"`
	Lon      float64            `json:"lon"`
	HasPos   bool               `json:"has_pos"`
	Status   string             `json:"status"` // offline, alarm, full, ok
	Last     *time.Time         `json:"last,omitempty"`
	Fields   map[string]float64 `json:"fields,omitempty"`
	Cases    []fleetCase        `json:"cases,omitempty"`
}

type fleetCase struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

func (c *Console) fleetPage(w http.ResponseWriter, r *http.Request, q *request) {
	d := struct {
		page
		Tiles string
	}{c.base(q, "fleet", "fleet"), c.opt.TileURL}
	c.render(w, http.StatusOK, "fleet", &d)
}

// fleetJSON lists the devices the user sees, their state and open cases;
// the fleet map polls it.
func (c *Console) fleetJSON(w http.ResponseWriter, r *http.Request, q *request) {
	open := true
	pg, err := c.svc.List(r.Context(), q.who, cases.Filter{Open: &open, Limit: 1000})
	if err != nil {
		c.fail(w, q, err)
		return
	}
	byDevice := map[string][]fleetCase{}
	for _, cs := range pg.Cases {
		if cs.Device != "" {
			byDevice[cs.Device] = append(byDevice[cs.Device], fleetCase{ID: cs.ID, Type: cs.Type})
		}
	}
	out := []fleetDevice{}
	for _, d := range c.svc.DevicesFor(q.who) {
		fd := fleetDevice{ID: d.ID, Kind: d.Kind, District: d.District, Lat: d.Lat, Lon: d.Lon, HasPos: d.HasPos,
			Cases: byDevice[d.ID], Status: "ok"}
		if d.LastReading != nil {
			t := d.LastReading.Time
			fd.Last, fd.Fields = &t, d.LastReading.Fields
		}
		switch {
		case !d.Online:
			fd.Status = "offline"
		case len(fd.Cases) > 0:
			fd.Status = "alarm"
		case fd.Fields["fill_pct"] >= fullPercent || fd.Fields["fill"] >= fullPercent:
			fd.Status = "full"
		}
		out = append(out, fd)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"devices": out})
}
