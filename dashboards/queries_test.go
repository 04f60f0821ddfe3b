package dashboards

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sanigate/sanigate/internal/influxtest"
)

// TestQueriesAgainstInfluxDB runs every InfluxQL query of every dashboard
// (variables, annotations, panel targets), filled in as Grafana fills it,
// against a real InfluxDB holding a simulated day of the demo city. Each
// runs twice: with every variable at "All", and with every variable set to
// all its values by name, the (a|b|c) regex form. Each must answer without
// error, with data of the shape its panel draws.
func TestQueriesAgainstInfluxDB(t *testing.T) {
	s := influxtest.Start(t, "sanigate")
	day := loadSimDay(t, s)
	for _, d := range All() {
		t.Run(d.UID, func(t *testing.T) {
			for _, mode := range []string{"all", "named"} {
				t.Run(mode, func(t *testing.T) { checkDashboard(t, s, d, day.now, mode == "all") })
			}
		})
	}
}

func checkDashboard(t *testing.T, s *influxtest.Server, d *Dashboard, now time.Time, all bool) {
	from := now.Add(-parseDuration(strings.TrimPrefix(d.Time.From, "now-")))
	vars := map[string]varValue{}
	allValues := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Datasource.UID != InfluxUID {
			continue
		}
		allValues[v.Name] = v.AllValue
		q, err := expand(v.Query, vars, allValues, from, now, time.Minute)
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		res, err := s.Query(q)
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		var values []string
		for _, r := range res {
			for _, row := range r.Rows() {
				if s, ok := row["value"].(string); ok {
					values = append(values, s)
				}
			}
		}
		if len(values) == 0 {
			t.Fatalf("variable %s: no values from %s", v.Name, q)
		}
		if all {
			vars[v.Name] = varValue{all: true}
		} else {
			vars[v.Name] = varValue{values: values}
		}
	}
	for _, a := range d.Annotations.List {
		q, err := expand(a.Query, vars, allValues, from, now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Query(q)
		if err != nil {
			t.Errorf("annotation %s: %v", a.Name, err)
		} else if err := checkResult(res, nil, nil); err != nil {
			t.Errorf("annotation %s: %v\n%s", a.Name, err, q)
		}
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		pFrom, pTo := panelRange(p.TimeFrom, from, now)
		iv := interval(pFrom, pTo, p.Interval)
		for _, tg := range p.Targets {
			if tg.Datasource.UID != InfluxUID {
				continue
			}
			q, err := expand(tg.Query, vars, allValues, pFrom, pTo, iv)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Query(q)
			if err != nil {
				t.Errorf("%q %s: %v", p.Title, tg.RefID, err)
				continue
			}
			if err := checkResult(res, p, tg); err != nil {
				t.Errorf("%q %s: %v\n%s", p.Title, tg.RefID, err, q)
			}
		}
	}
}

// checkResult checks an answer has the shape panel p draws from target tg:
// rows; no column that is null in every row (a field or tag the data lacks);
// numbers, not all zero, where the panel draws numbers; the fields the panel
// refers to by name.
func checkResult(res []influxtest.Result, p *Panel, tg *Target) error {
	rows := 0
	seen := map[string]bool{} // column or tag -> some row has a value
	nonZero := false
	for _, r := range res {
		for k := range r.Tags {
			seen[k] = true
		}
		for _, v := range r.Values {
			rows++
			for i, c := range r.Columns {
				if _, ok := seen[c]; !ok {
					seen[c] = false
				}
				if i < len(v) && v[i] != nil {
					seen[c] = true
					if n, ok := v[i].(json.Number); ok && c != "time" {
						if f, _ := n.Float64(); f != 0 {
							nonZero = true
						}
					}
				}
			}
		}
	}
	if rows == 0 {
		return fmt.Errorf("no data")
	}
	for c, ok := range seen {
		if !ok {
			return fmt.Errorf("column %q is empty in every row", c)
		}
	}
	if p == nil {
		return nil
	}
	switch p.Type {
	case "timeseries", "stat", "bargauge", "piechart", "histogram", "barchart":
		if !nonZero {
			return fmt.Errorf("no number other than zero for a %s", p.Type)
		}
	}
	if p.Type == "timeseries" && tg.ResultFormat != "time_series" {
		return fmt.Errorf("a time series panel needs time_series results, not %s", tg.ResultFormat)
	}
	if tg.ResultFormat != "table" {
		return nil
	}
	var need []string
	switch p.Type {
	case "geomap":
		need = append(need, "lat", "lon")
		for _, l := range p.Options["layers"].([]any) {
			if f, ok := l.(map[string]any)["config"].(map[string]any)["style"].(map[string]any)["color"].(map[string]any)["field"].(string); ok {
				need = append(need, f)
			}
		}
	case "barchart":
		need = append(need, p.Options["xField"].(string))
	}
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID == "byName" {
			need = append(need, o.Matcher.Options.(string))
		}
	}
	for _, tr := range p.Transformations {
		if tr.ID == "sortBy" {
			need = append(need, tr.Options["sort"].([]any)[0].(map[string]any)["field"].(string))
		}
	}
	for _, n := range need {
		if _, ok := seen[n]; !ok && len(p.Targets) == 1 {
			return fmt.Errorf("the panel refers to field %q, which the answer lacks (has %v)", n, keys(seen))
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
