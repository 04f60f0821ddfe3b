package cases

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/sanigate/sanigate/telemetry"
)

// KPI is the evaluation (考核评价) of a unit, a district, or both, over a
// period. Rejected cases count nowhere.
//
//   - Due (应结案数): cases whose close deadline falls in the period, or that were closed in it.
//   - Closed: of those, the closed; ClosedOnTime: closed by their close deadline.
//   - Reworked: due cases that failed a verification at least once (返工).
//   - Extended: due cases that were deferred (延期).
//   - Open: cases filed before the end of the period and not closed by then.
//   - Overdue: due or open cases that missed a deadline.
//   - Recurrences: cases filed in the period at a key (type and device or
//     place) that had a case before.
//   - MeanAcceptS: mean seconds from dispatch to acceptance, over cases
//     accepted in the period; MeanCloseS: from filing to closing, over cases
//     closed in the period.
//
// The rates divide by Due and are 0 when nothing is due.
type KPI struct {
	PeriodStart   time.Time `json:"period_start"`
	PeriodEnd     time.Time `json:"period_end"`
	Unit          string    `json:"unit"`
	District      string    `json:"district"`
	Due           int       `json:"due"`
	Closed        int       `json:"closed"`
	ClosedOnTime  int       `json:"closed_on_time"`
	Reworked      int       `json:"reworked"`
	Extended      int       `json:"extended"`
	Open          int       `json:"open"`
	Overdue       int       `json:"overdue"`
	Recurrences   int       `json:"recurrences"`
	ClosureRate   float64   `json:"closure_rate"`
	OnTimeRate    float64   `json:"on_time_rate"`
	ReworkRate    float64   `json:"rework_rate"`
	ExtensionRate float64   `json:"extension_rate"`
	MeanAcceptS   float64   `json:"mean_accept_s"`
	MeanCloseS    float64   `json:"mean_close_s"`

	accepted, closedIn  int
	acceptSum, closeSum float64
}

// KPIQuery chooses the period and grouping of KPIs.
type KPIQuery struct {
	// From and To bound the period; zero values mean today in the city zone.
	From, To time.Time
	// By groups the figures: "unit", "district", "unit,district" (default),
	// or "all" for one row.
	By string
	// Daily splits the period into days starting at the city's midnight.
	Daily bool
}

type kpiCase struct {
	unit, district                                string
	filed, dispatched, accepted, closed, closeDue int64
	overdue, reworks, extended, recurrence, open  int
}

// KPIs computes the evaluation figures that who may see, one row per group
// (and day, when Daily), ordered by period, unit and district.
func (s *Service) KPIs(ctx context.Context, who Actor, q KPIQuery) ([]KPI, error) {
	if q.From.IsZero() && q.To.IsZero() {
		q.From = dayStart(s.now().In(s.loc))
		q.To = q.From.AddDate(0, 0, 1)
	}
	if q.To.IsZero() {
		q.To = s.now()
	}
	if !q.To.After(q.From) {
		return nil, fmt.Errorf("%w: the period ends before it starts", ErrBadRequest)
	}
	byUnit, byDistrict, err := kpiGrouping(q.By)
	if err != nil {
		return nil, err
	}
	if q.Daily && q.To.Sub(q.From) > 400*24*time.Hour {
		return nil, fmt.Errorf("%w: daily figures for more than 400 days", ErrBadRequest)
	}
	all, err := s.kpiCases(ctx, who, q, byUnit, byDistrict)
	if err != nil {
		return nil, err
	}
	periods := []kpiPeriod{{q.From, q.To}}
	if q.Daily {
		periods = periods[:0]
		for d := dayStart(q.From.In(s.loc)); d.Before(q.To); d = d.AddDate(0, 0, 1) {
			periods = append(periods, kpiPeriod{d, d.AddDate(0, 0, 1)})
		}
	}
	var out []KPI
	for _, p := range periods {
		out = append(out, p.figures(all)...)
	}
	if out == nil {
		out = []KPI{}
	}
	return out, nil
}

// kpiGrouping reads the by= parameter: group by unit, by district, or both.
func kpiGrouping(by string) (byUnit, byDistrict bool, err error) {
	byUnit, byDistrict = true, true
	switch by {
	case "", "unit,district", "district,unit":
	case "unit":
		byDistrict = false
	case "district":
		byUnit = false
	case "all":
		byUnit, byDistrict = false, false
	default:
		return false, false, fmt.Errorf("%w: by=%q (unit, district, unit,district, all)", ErrBadRequest, by)
	}
	return byUnit, byDistrict, nil
}

// kpiCases loads the cases that count in the period of q for who.
func (s *Service) kpiCases(ctx context.Context, who Actor, q KPIQuery, byUnit, byDistrict bool) ([]kpiCase, error) {
	from, to := ms(q.From), ms(q.To)
	where := `state <> ? AND filed_at < ? AND (is_open = 1 OR close_due >= ? OR closed_at >= ? OR accepted_at >= ? OR filed_at >= ?)`
	args := []any{string(Rejected), to, from, from, from, from}
	if cond, a := who.scope(); cond != "" {
		where += " AND " + cond
		args = append(args, a...)
	}
	rows, err := s.st.query(ctx, s.st.db, `SELECT unit, district, filed_at, dispatched_at, accepted_at, closed_at, close_due,
overdue, rework_count, extended, recurrence, is_open FROM cases WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("cases: KPIs: %w", err)
	}
	var all []kpiCase
	for rows.Next() {
		var k kpiCase
		if err := rows.Scan(&k.unit, &k.district, &k.filed, &k.dispatched, &k.accepted, &k.closed, &k.closeDue,
			&k.overdue, &k.reworks, &k.extended, &k.recurrence, &k.open); err != nil {
			rows.Close()
			return nil, err
		}
		if !byUnit {
			k.unit = ""
		}
		if !byDistrict {
			k.district = ""
		}
		all = append(all, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return all, nil
}

// kpiPeriod is one period of the figures: [a, b).
type kpiPeriod struct{ a, b time.Time }

// figures computes the period's figures per group, sorted by unit and district.
func (p kpiPeriod) figures(all []kpiCase) []KPI {
	var out []KPI
	groups := map[[2]string]*KPI{}
	get := func(k kpiCase) *KPI {
		g := groups[[2]string{k.unit, k.district}]
		if g == nil {
			g = &KPI{PeriodStart: p.a, PeriodEnd: p.b, Unit: k.unit, District: k.district}
			groups[[2]string{k.unit, k.district}] = g
		}
		return g
	}
	a, b := ms(p.a), ms(p.b)
	in := func(t int64) bool { return t != 0 && t >= a && t < b }
	for _, k := range all {
		if k.filed >= b {
			continue
		}
		due := in(k.closeDue) || in(k.closed)
		open := k.closed == 0 || k.closed >= b
		counted := false
		if due {
			g := get(k)
			counted = true
			g.Due++
			if k.closed != 0 {
				g.Closed++
				if k.closeDue == 0 || k.closed <= k.closeDue {
					g.ClosedOnTime++
				}
			}
			if k.reworks > 0 {
				g.Reworked++
			}
			if k.extended == 1 {
				g.Extended++
			}
		}
		if open {
			get(k).Open++
			counted = true
		}
		if counted && k.overdue == 1 {
			get(k).Overdue++
		}
		if in(k.filed) && k.recurrence > 0 {
			get(k).Recurrences++
		}
		if in(k.accepted) && k.dispatched != 0 {
			g := get(k)
			g.accepted++
			g.acceptSum += float64(k.accepted-k.dispatched) / 1000
		}
		if in(k.closed) {
			g := get(k)
			g.closedIn++
			g.closeSum += float64(k.closed-k.filed) / 1000
		}
	}
	keys := make([][2]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		g := groups[k]
		g.finish()
		out = append(out, *g)
	}
	return out
}

func (g *KPI) finish() {
	if g.Due > 0 {
		d := float64(g.Due)
		g.ClosureRate = float64(g.Closed) / d
		g.OnTimeRate = float64(g.ClosedOnTime) / d
		g.ReworkRate = float64(g.Reworked) / d
		g.ExtensionRate = float64(g.Extended) / d
	}
	if g.accepted > 0 {
		g.MeanAcceptS = g.acceptSum / float64(g.accepted)
	}
	if g.closedIn > 0 {
		g.MeanCloseS = g.closeSum / float64(g.closedIn)
	}
}

// dayStart is the midnight starting t's day in t's location.
func dayStart(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// KPILines returns the `case_kpi` points of one day (in the city zone) per
// unit and district: time = the day's start, tags unit, district,
// period=day.
func (s *Service) KPILines(ctx context.Context, day time.Time) ([]byte, error) {
	start := dayStart(day.In(s.loc))
	rows, err := s.KPIs(ctx, System, KPIQuery{From: start, To: start.AddDate(0, 0, 1)})
	if err != nil {
		return nil, err
	}
	var buf []byte
	for _, k := range rows {
		l := telemetry.StartLine(buf, "case_kpi")
		l.Tag("district", k.District)
		l.Tag("period", "day")
		l.Tag("unit", k.Unit)
		for _, f := range []struct {
			name string
			n    int
		}{{"due", k.Due}, {"closed", k.Closed}, {"closed_on_time", k.ClosedOnTime}, {"reworked", k.Reworked},
			{"extended", k.Extended}, {"open", k.Open}, {"overdue", k.Overdue}, {"recurrences", k.Recurrences}} {
			l.Int(f.name, int64(f.n))
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"closure_rate", k.ClosureRate}, {"on_time_rate", k.OnTimeRate}, {"rework_rate", k.ReworkRate},
			{"extension_rate", k.ExtensionRate}, {"mean_accept_s", k.MeanAcceptS}, {"mean_close_s", k.MeanCloseS}} {
			l.Float(f.name, f.v)
		}
		buf = l.End(start)
	}
	return buf, nil
}

// WriteKPIPoints writes the day's case_kpi points to the point writer. A
// point for the same day, unit and district overwrites the previous one in
// InfluxDB, so the figures can be rewritten as often as wanted.
func (s *Service) WriteKPIPoints(ctx context.Context, day time.Time) error {
	if s.points == nil {
		return nil
	}
	lines, err := s.KPILines(ctx, day)
	if err != nil {
		return err
	}
	s.writeLines(ctx, lines)
	return nil
}
