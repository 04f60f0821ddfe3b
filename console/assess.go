package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sanigate/sanigate/cases"
)

type assessData struct {
	page
	From, To string
	By       string
	Rows     []cases.KPI
	Err      string
}

// kpiQuery reads the period (dates, To inclusive; default: the last 30
// days) and the grouping.
func (c *Console) kpiQuery(r *http.Request) (cases.KPIQuery, string, string, error) {
	v := r.URL.Query()
	today := c.now().In(c.opt.Location)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, c.opt.Location)
	from, to := today.AddDate(0, 0, -29), today
	var err error
	if s := v.Get("from"); s != "" {
		if from, err = time.ParseInLocation(time.DateOnly, s, c.opt.Location); err != nil {
			return cases.KPIQuery{}, "", "", fmt.Errorf("%w: from %q", cases.ErrBadRequest, s)
		}
	}
	if s := v.Get("to"); s != "" {
		if to, err = time.ParseInLocation(time.DateOnly, s, c.opt.Location); err != nil {
			return cases.KPIQuery{}, "", "", fmt.Errorf("%w: to %q", cases.ErrBadRequest, s)
		}
	}
	by := v.Get("by")
	switch by {
	case "unit", "district", "unit,district":
	default:
		by = "unit"
	}
	return cases.KPIQuery{From: from, To: to.AddDate(0, 0, 1), By: by}, from.Format(time.DateOnly), to.Format(time.DateOnly), nil
}

func (c *Console) assessPage(w http.ResponseWriter, r *http.Request, q *request) {
	d := assessData{page: c.base(q, "assessment", "assessment")}
	kq, from, to, err := c.kpiQuery(r)
	if err != nil {
		c.fail(w, q, err)
		return
	}
	d.From, d.To, d.By = from, to, kq.By
	if d.Rows, err = c.svc.KPIs(r.Context(), q.who, kq); err != nil {
		c.fail(w, q, err)
		return
	}
	c.render(w, http.StatusOK, "assessment", &d)
}

func (c *Console) assessCSV(w http.ResponseWriter, r *http.Request, q *request) {
	kq, from, to, err := c.kpiQuery(r)
	if err != nil {
		c.fail(w, q, err)
		return
	}
	rows, err := c.svc.KPIs(r.Context(), q.who, kq)
	if err != nil {
		c.fail(w, q, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="assessment-%s-%s.csv"`, from, to))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"period_start", "period_end", "unit", "district", "due", "closed", "closed_on_time", "reworked",
		"extended", "open", "overdue", "closure_rate", "on_time_rate", "rework_rate", "deferral_rate"})
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }
	for _, k := range rows {
		_ = cw.Write([]string{k.PeriodStart.Format(time.RFC3339), k.PeriodEnd.Format(time.RFC3339), csvSafe(k.Unit),
			csvSafe(k.District), strconv.Itoa(k.Due), strconv.Itoa(k.Closed), strconv.Itoa(k.ClosedOnTime),
			strconv.Itoa(k.Reworked), strconv.Itoa(k.Extended), strconv.Itoa(k.Open), strconv.Itoa(k.Overdue),
			f(k.ClosureRate), f(k.OnTimeRate), f(k.ReworkRate), f(k.ExtensionRate)})
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
