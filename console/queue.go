package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sanigate/sanigate/cases"
	"github.com/sanigate/sanigate/violations"
)

// pageSize is the number of cases on one page of the queue.
const pageSize = 50

type stateCount struct {
	State  cases.State
	N      string
	Active bool
	Query  url.Values
}

type queueData struct {
	page
	Cases      []cases.Case
	Counts     []stateCount
	Q          url.Values
	Next       url.Values
	First      url.Values
	Paged      bool
	Types      []string
	Severities []string
	Units      []cases.UnitConfig
	Sorts      []string
	Err        string
	Since      int64
}

// queueFilter reads the queue's filters from the query; bad values are
// dropped and named in the returned message.
func (c *Console) queueFilter(v url.Values) (cases.Filter, string) {
	var f cases.Filter
	var bad []string
	for _, s := range v["state"] {
		if s == "" {
			continue
		}
		if !validState(cases.State(s)) {
			bad = append(bad, "state")
			continue
		}
		f.State = append(f.State, cases.State(s))
	}
	f.Type, f.Severity, f.District = v.Get("type"), v.Get("severity"), strings.TrimSpace(v.Get("district"))
	f.Unit, f.Contractor = v.Get("unit"), strings.TrimSpace(v.Get("contractor"))
	switch v.Get("overdue") {
	case "yes":
		t := true
		f.Overdue = &t
	case "no":
		t := false
		f.Overdue = &t
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
		add  int
	}{{"from", &f.From, 0}, {"to", &f.To, 1}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.ParseInLocation(time.DateOnly, s, c.opt.Location)
			if err != nil {
				bad = append(bad, p.name)
				continue
			}
			*p.dst = t.AddDate(0, 0, p.add)
		}
	}
	f.Order = v.Get("sort")
	switch f.Order {
	case "", cases.OrderNewest, cases.OrderOldest, cases.OrderDue:
	default:
		bad = append(bad, "sort")
		f.Order = ""
	}
	if a := v.Get("after"); a != "" {
		if !parseCursor(&f, a) {
			bad = append(bad, "after")
		}
	}
	f.Limit = pageSize
	if len(bad) > 0 {
		return f, "ignored: " + strings.Join(bad, ", ")
	}
	return f, ""
}

// parseCursor reads "id" or, for the deadline order, "due-ms.id".
func parseCursor(f *cases.Filter, a string) bool {
	due, id, hasDue := strings.Cut(a, ".")
	if !hasDue {
		id = due
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return false
	}
	switch f.Order {
	case "", cases.OrderNewest:
		f.Before = n
	case cases.OrderOldest:
		f.After = n
	case cases.OrderDue:
		d, err := strconv.ParseInt(due, 10, 64)
		if !hasDue || err != nil || d < 0 {
			return false
		}
		f.After = n
		if d > 0 {
			f.AfterDue = time.UnixMilli(d)
		}
	}
	return true
}

func cursorOf(f cases.Filter, last cases.Case) string {
	if f.Order == cases.OrderDue {
		var d int64
		if !last.CloseDue.IsZero() {
			d = last.CloseDue.UnixMilli()
		}
		return strconv.FormatInt(d, 10) + "." + strconv.FormatInt(last.ID, 10)
	}
	return strconv.FormatInt(last.ID, 10)
}

func validState(s cases.State) bool {
	for _, x := range cases.States {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Console) queuePage(w http.ResponseWriter, r *http.Request, q *request) {
	v := r.URL.Query()
	f, msg := c.queueFilter(v)
	d := queueData{page: c.base(q, "queue", "queue"), Q: v, Err: msg, Types: violations.Types,
		Severities: []string{violations.Minor, violations.Major, violations.Critical}, Units: c.svc.Units(),
		Sorts: []string{cases.OrderNewest, cases.OrderOldest, cases.OrderDue}, Paged: v.Get("after") != ""}
	var err error
	if d.Since, err = c.svc.LatestID(r.Context(), q.who); err != nil {
		c.fail(w, q, err)
		return
	}
	pg, err := c.svc.List(r.Context(), q.who, f)
	if err != nil {
		c.fail(w, q, err)
		return
	}
	d.Cases = pg.Cases
	d.First = cloneValues(v)
	d.First.Del("after")
	if pg.NextCursor != "" && len(pg.Cases) > 0 {
		d.Next = cloneValues(v)
		d.Next.Set("after", cursorOf(f, pg.Cases[len(pg.Cases)-1]))
	}
	counts, err := c.svc.CountByState(r.Context(), q.who, f, countLimit(f))
	if err != nil {
		c.fail(w, q, err)
		return
	}
	active := map[cases.State]bool{}
	for _, s := range f.State {
		active[s] = true
	}
	for _, s := range cases.States {
		sq := cloneValues(v)
		sq.Del("after")
		sq.Del("state")
		if !active[s] {
			sq.Set("state", string(s))
		}
		n := strconv.Itoa(counts[s])
		if lim := countLimit(f); lim > 0 && counts[s] > lim {
			n = "≥" + strconv.Itoa(lim)
		}
		d.Counts = append(d.Counts, stateCount{State: s, N: n, Active: active[s], Query: sq})
	}
	c.render(w, http.StatusOK, "queue", &d)
}

// maxCount is where the counts per state stop for filters that no index
// covers; counts within the user's scope alone are exact.
const maxCount = 1000

func countLimit(f cases.Filter) int {
	if f.Type != "" || f.Severity != "" || f.District != "" || f.Unit != "" || f.Contractor != "" || f.Overdue != nil ||
		!f.From.IsZero() || !f.To.IsZero() {
		return maxCount
	}
	return 0
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
