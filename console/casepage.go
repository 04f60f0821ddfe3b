package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/violations"
)

// actionForm is one action the user may take, as a form on the case page.
// Verify appears twice: pass (verify) and fail (verify_fail).
type actionForm struct {
	Name    string // act.<Name>, confirm.<Name>
	Action  cases.Action
	Unit    bool // asks for a unit
	Until   bool // asks for a new deadline
	Photo   bool // takes a photo
	Pass    string
	NeedMsg bool
}

type historyRow struct {
	cases.HistoryEntry
	Photos []string
	Text   string
}

type caseData struct {
	page
	C       *cases.Case
	Actions []actionForm
	History []historyRow
	Units   []cases.UnitConfig
	Done    string
	Data    template.JS
}

func (c *Console) casePage(w http.ResponseWriter, r *http.Request, q *request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, q, fmt.Errorf("%w: case id %q", cases.ErrBadRequest, r.PathValue("id")))
		return
	}
	cs, err := c.svc.Get(r.Context(), q.who, id)
	if err != nil {
		c.fail(w, q, err)
		return
	}
	d := caseData{page: c.base(q, "queue", "queue"), C: cs, Units: c.svc.Units(), Done: r.URL.Query().Get("done")}
	d.Title = "case"
	for _, a := range cases.ActionsFor(q.who, cs) {
		switch a {
		case cases.Verify:
			d.Actions = append(d.Actions, actionForm{Name: "verify", Action: a, Pass: "true"},
				actionForm{Name: "verify_fail", Action: a, Pass: "false", NeedMsg: true})
		default:
			d.Actions = append(d.Actions, actionForm{Name: string(a), Action: a, Unit: a == cases.Dispatch || a == cases.Transfer,
				Until: a == cases.Defer, Photo: a == cases.Handle, NeedMsg: a == cases.Comment || a == cases.Reject})
		}
	}
	for _, h := range cs.History {
		text, photos := splitPhotos(h.Note)
		d.History = append(d.History, historyRow{HistoryEntry: h, Photos: photos, Text: text})
	}
	ev := evidenceView(cs, c.opt.TileURL)
	c.withHistory(r.Context(), cs, &ev)
	b, err := json.Marshal(ev)
	if err != nil {
		c.fail(w, q, err)
		return
	}
	d.Data = template.JS(b)
	c.render(w, http.StatusOK, "case", &d)
}

var photoRef = regexp.MustCompile(`\[photo:([A-Za-z0-9_-]{16,64}\.(?:jpg|png|webp))\]`)

// splitPhotos takes the photo references out of a history note.
func splitPhotos(note string) (string, []string) {
	var names []string
	for _, m := range photoRef.FindAllStringSubmatch(note, -1) {
		names = append(names, m[1])
	}
	return strings.TrimSpace(photoRef.ReplaceAllString(note, "")), names
}

// series is one numeric field of the evidence over time, for the curve.
type series struct {
	Name   string       `json:"name"`
	Points [][2]float64 `json:"points"` // unix seconds, value
}

// evidence is what the case page's script draws.
type evidence struct {
	Lat      float64         `json:"lat"`
	Lon      float64         `json:"lon"`
	HasPos   bool            `json:"has_pos"`
	Geometry json.RawMessage `json:"geometry,omitempty"`
	Track    [][3]float64    `json:"track"` // lat, lon, unix seconds
	Series   []series        `json:"series"`
	Tiles    string          `json:"tiles,omitempty"`
}

// curveSkip are evidence fields that are not a curve.
var curveSkip = map[string]bool{"lat": true, "lon": true, "tipper": true, "drop_kg": true}

func evidenceView(cs *cases.Case, tiles string) evidence {
	ev := evidence{Lat: cs.Lat, Lon: cs.Lon, HasPos: cs.HasPos, Geometry: cs.Geometry, Track: [][3]float64{}, Series: []series{}, Tiles: tiles}
	var items []violations.Evidence
	for _, e := range cs.Evidence {
		items = append(items, e.Items...)
	}
	for _, h := range cs.History {
		items = append(items, h.Evidence...)
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Time.Before(items[j].Time) })
	byName := map[string]*series{}
	var names []string
	seen := map[[3]float64]bool{}
	for _, it := range items {
		ts := float64(it.Time.UnixMilli()) / 1000
		lat, okLat := it.Fields["lat"]
		lon, okLon := it.Fields["lon"]
		if okLat && okLon {
			p := [3]float64{lat, lon, ts}
			if !seen[p] {
				seen[p] = true
				ev.Track = append(ev.Track, p)
			}
		}
		for k, v := range it.Fields {
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
	sort.Strings(names)
	for _, n := range names {
		if len(byName[n].Points) >= 2 {
			ev.Series = append(ev.Series, *byName[n])
		}
	}
	return ev
}

// act takes one action on a case through the case service, the same way
// the API does, and goes back to the case page.
func (c *Console) act(w http.ResponseWriter, r *http.Request, q *request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, q, fmt.Errorf("%w: case id %q", cases.ErrBadRequest, r.PathValue("id")))
		return
	}
	req := cases.ActionRequest{Action: cases.Action(r.PostFormValue("action")), Note: strings.TrimSpace(r.PostFormValue("note")),
		Unit: r.PostFormValue("unit")}
	if len(req.Note) > 4000 {
		c.fail(w, q, fmt.Errorf("%w: the note is longer than 4000 bytes", cases.ErrBadRequest))
		return
	}
	switch r.PostFormValue("pass") {
	case "true":
		t := true
		req.Pass = &t
	case "false":
		f := false
		req.Pass = &f
	}
	if u := r.PostFormValue("until"); u != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", u, c.opt.Location)
		if err != nil {
			c.fail(w, q, fmt.Errorf("%w: until %q is not a date and time", cases.ErrBadRequest, u))
			return
		}
		req.Until = t
	}
	// The photo is checked against the case first: only who sees it and
	// may handle it may store one.
	var stored string
	if req.Action == cases.Handle {
		cs, err := c.svc.Get(r.Context(), q.who, id)
		if err != nil {
			c.fail(w, q, err)
			return
		}
		if !containsAction(cases.ActionsFor(q.who, cs), cases.Handle) {
			c.fail(w, q, fmt.Errorf("%w: cannot handle case %d now", cases.ErrInvalidTransition, id))
			return
		}
		if stored, err = c.savePhoto(r, id); err != nil {
			c.log.Info("console photo refused", "case", id, "user", q.who.Name, "err", err)
			http.Error(w, c.tr(q.lang, "err.photo")+": "+err.Error(), http.StatusBadRequest)
			return
		}
		if stored != "" {
			req.Note = strings.TrimSpace(req.Note + " [photo:" + stored + "]")
		}
	}
	if _, err := c.svc.Act(r.Context(), q.who, id, req); err != nil {
		c.removePhoto(id, stored)
		c.fail(w, q, err)
		return
	}
	c.log.Info("console action", "case", id, "action", req.Action, "user", q.who.Name)
	name := string(req.Action)
	if req.Pass != nil && !*req.Pass {
		name = "verify_fail"
	}
	http.Redirect(w, r, "/cases/"+strconv.FormatInt(id, 10)+"?done="+name, http.StatusSeeOther)
}

func containsAction(list []cases.Action, a cases.Action) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
