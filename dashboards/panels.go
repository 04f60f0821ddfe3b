package dashboards

import (
	"fmt"
	"strings"
)

// board lays panels out left to right, top to bottom, on Grafana's
// 24-column grid, numbering them and their queries as it goes.
type board struct {
	d        *Dashboard
	nextID   int
	x, y, rh int // cursor and the height of the current line
}

func newBoard(uid, title, description string, tags ...string) *board {
	return &board{d: &Dashboard{
		UID:           uid,
		Title:         title,
		Description:   description,
		Tags:          append([]string{"sanigate"}, tags...),
		Timezone:      cityTimezone,
		Editable:      true,
		GraphTooltip:  1, // shared crosshair
		SchemaVersion: SchemaVersion,
		Version:       1,
		Refresh:       "1m",
		Time:          TimeRange{From: "now-24h", To: "now"},
		Templating:    Templating{List: []*Variable{}},
		Annotations:   Annotations{List: []*Annotation{}},
		Links: []Link{{Title: "sanigate", Type: "dashboards", Tags: []string{"sanigate"},
			AsDropdown: true, IncludeVars: true, KeepTime: true}},
	}, nextID: 1}
}

// cityTimezone is the city's zone: dashboards show it and group days in it
// (tz() in InfluxQL), so a day's bar is the city's calendar day.
const cityTimezone = "Asia/Shanghai"

func (b *board) vars(vs ...*Variable) { b.d.Templating.List = append(b.d.Templating.List, vs...) }

func (b *board) annotate(as ...*Annotation) {
	b.d.Annotations.List = append(b.d.Annotations.List, as...)
}

// row starts a new line headed by a row titled title.
func (b *board) row(title string) {
	b.newline()
	f := false
	b.d.Panels = append(b.d.Panels, &Panel{ID: b.id(), Type: "row", Title: title,
		GridPos: GridPos{H: 1, W: 24, X: 0, Y: b.y}, Collapsed: &f})
	b.y++
}

func (b *board) newline() {
	if b.x > 0 {
		b.x, b.y, b.rh = 0, b.y+b.rh, 0
	}
}

func (b *board) id() int { b.nextID++; return b.nextID - 1 }

// add places p, w columns wide and h rows high, after the previous panel or
// on a new line when it does not fit.
func (b *board) add(w, h int, p *Panel) *Panel {
	if b.x+w > 24 {
		b.newline()
	}
	p.ID = b.id()
	p.GridPos = GridPos{H: h, W: w, X: b.x, Y: b.y}
	b.d.Panels = append(b.d.Panels, p)
	b.x += w
	if h > b.rh {
		b.rh = h
	}
	for i, t := range p.Targets {
		t.RefID = string(rune('A' + i))
		if p.Datasource == nil {
			p.Datasource = t.Datasource
		}
	}
	return p
}

func (b *board) build() *Dashboard { return b.d }

// Queries.

// influx is an InfluxQL query answered as time series.
func influx(q string) *Target {
	return &Target{Datasource: Influx, Query: q, RawQuery: true, ResultFormat: "time_series"}
}

// influxTable is an InfluxQL query answered as a table.
func influxTable(q string) *Target {
	return &Target{Datasource: Influx, Query: q, RawQuery: true, ResultFormat: "table"}
}

// alias names the series of an InfluxQL time series query ($tag_x for a tag).
func (t *Target) alias(a string) *Target { t.Alias = a; return t }

// prom is a PromQL range query.
func prom(expr, legend string) *Target {
	return &Target{Datasource: Prometheus, Expr: expr, LegendFormat: legend, Range: true}
}

// match is the InfluxQL condition that tag matches the variable of the same
// name, in the regex form Grafana fills multi-value variables into.
func match(tags ...string) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = fmt.Sprintf(`"%s" =~ /^$%s$/`, t, t)
	}
	return strings.Join(parts, " AND ")
}

// Panels.

func panel(typ, title, unit string, targets ...*Target) *Panel {
	return &Panel{Type: typ, Title: title, Targets: targets,
		FieldConfig: &FieldConfig{Defaults: FieldDefaults{Unit: unit, Mappings: []any{}}, Overrides: []Override{}},
		Options:     map[string]any{}}
}

func timeseries(title, unit string, targets ...*Target) *Panel {
	p := panel("timeseries", title, unit, targets...)
	p.FieldConfig.Defaults.Custom = map[string]any{"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
		"showPoints": "never", "spanNulls": false}
	p.Options = map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
		"tooltip": map[string]any{"mode": "multi", "sort": "desc"}}
	return p
}

// bars is a time series panel drawn as bars, for counts per interval or day.
func bars(title, unit string, stacked bool, targets ...*Target) *Panel {
	p := timeseries(title, unit, targets...)
	p.FieldConfig.Defaults.Custom["drawStyle"] = "bars"
	p.FieldConfig.Defaults.Custom["fillOpacity"] = 80
	if stacked {
		p.FieldConfig.Defaults.Custom["stacking"] = map[string]any{"mode": "normal", "group": "A"}
	}
	return p
}

func stat(title, unit string, targets ...*Target) *Panel {
	p := panel("stat", title, unit, targets...)
	p.Options = map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
		"colorMode": "value", "graphMode": "none", "textMode": "auto", "justifyMode": "auto", "orientation": "auto"}
	return p
}

func table(title, unit string, targets ...*Target) *Panel {
	p := panel("table", title, unit, targets...)
	p.Options = map[string]any{"showHeader": true, "cellHeight": "sm", "footer": map[string]any{"show": false}}
	return p
}

// bargauge shows one bar per series or row, ranked when sorted.
func bargauge(title, unit string, targets ...*Target) *Panel {
	p := panel("bargauge", title, unit, targets...)
	p.Options = map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": true},
		"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": true, "valueMode": "color"}
	return p
}

// barchart draws table rows as bars, x along the string field xField.
func barchart(title, unit, xField string, stacked bool, targets ...*Target) *Panel {
	p := panel("barchart", title, unit, targets...)
	stacking := "none"
	if stacked {
		stacking = "normal"
	}
	p.Options = map[string]any{"xField": xField, "orientation": "auto", "stacking": stacking, "showValue": "auto",
		"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
		"tooltip": map[string]any{"mode": "multi", "sort": "none"}, "xTickLabelRotation": 0, "barWidth": 0.8, "groupWidth": 0.7}
	p.FieldConfig.Defaults.Custom = map[string]any{"fillOpacity": 80, "lineWidth": 1}
	return p
}

func histogram(title, unit string, bucketSize float64, targets ...*Target) *Panel {
	p := panel("histogram", title, unit, targets...)
	p.Options = map[string]any{"bucketSize": bucketSize, "combine": true,
		"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": false}}
	return p
}

func piechart(title, unit string, targets ...*Target) *Panel {
	p := panel("piechart", title, unit, targets...)
	p.Options = map[string]any{"reduceOptions": map[string]any{"calcs": []string{"sum"}, "fields": "", "values": false},
		"pieType": "donut", "displayLabels": []string{"percent"},
		"legend": map[string]any{"displayMode": "table", "placement": "right", "showLegend": true, "values": []string{"value"}}}
	return p
}

// geomap shows rows with lat and lon fields as markers on a map of the demo
// city's area, coloured by colorField (numeric) when given.
func geomap(title string, layer string, colorField string, targets ...*Target) *Panel {
	p := panel("geomap", title, "", targets...)
	color := map[string]any{"fixed": "blue"}
	if colorField != "" {
		color = map[string]any{"field": colorField, "fixed": "dark-green"}
	}
	lyr := map[string]any{"type": layer, "name": title, "tooltip": true,
		"location": map[string]any{"mode": "coords", "latitude": "lat", "longitude": "lon"},
		"config": map[string]any{"showLegend": true, "style": map[string]any{
			"color": color, "opacity": 0.8, "size": map[string]any{"fixed": 5},
			"symbol": map[string]any{"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}}}}
	if colorField != "" {
		p.FieldConfig.Defaults.Color = map[string]any{"mode": "continuous-GrYlRd"}
	}
	p.Options = map[string]any{
		"view":     map[string]any{"id": "coords", "lat": 39.925, "lon": 116.40, "zoom": 11, "allLayers": true},
		"controls": map[string]any{"showZoom": true, "mouseWheelZoom": true, "showAttribution": true},
		"basemap":  map[string]any{"type": "default", "name": "Basemap"},
		"layers":   []any{lyr},
		"tooltip":  map[string]any{"mode": "details"},
	}
	return p
}

// Panel settings.

func (p *Panel) describe(s string) *Panel { p.Description = s; return p }

func (p *Panel) from(rel string) *Panel { p.TimeFrom = rel; return p }

func (p *Panel) minmax(min, max float64) *Panel {
	p.FieldConfig.Defaults.Min, p.FieldConfig.Defaults.Max = &min, &max
	return p
}

func (p *Panel) decimals(n int) *Panel { p.FieldConfig.Defaults.Decimals = &n; return p }

func (p *Panel) noValue(s string) *Panel { p.FieldConfig.Defaults.NoValue = s; return p }

// thresholds colours values: base below the first limit, then each limit's
// colour at or above it (pairs of value, colour).
func (p *Panel) thresholds(base string, steps ...any) *Panel {
	t := &Thresholds{Mode: "absolute", Steps: []Step{{Color: base}}}
	for i := 0; i+1 < len(steps); i += 2 {
		v := toFloat(steps[i])
		t.Steps = append(t.Steps, Step{Color: steps[i+1].(string), Value: &v})
	}
	p.FieldConfig.Defaults.Thresholds = t
	return p
}

// thresholdLines draws the thresholds as dashed lines on a time series.
func (p *Panel) thresholdLines() *Panel {
	if p.FieldConfig.Defaults.Custom == nil {
		p.FieldConfig.Defaults.Custom = map[string]any{}
	}
	p.FieldConfig.Defaults.Custom["thresholdsStyle"] = map[string]any{"mode": "dashed"}
	return p
}

// colorByThresholds colours values by the thresholds (stat, bar gauge, table cells).
func (p *Panel) colorByThresholds() *Panel {
	p.FieldConfig.Defaults.Color = map[string]any{"mode": "thresholds"}
	return p
}

// rename shows the field from as to, with an optional unit.
func (p *Panel) rename(from, to, unit string) *Panel {
	props := []Property{{ID: "displayName", Value: to}}
	if unit != "" {
		props = append(props, Property{ID: "unit", Value: unit})
	}
	p.FieldConfig.Overrides = append(p.FieldConfig.Overrides, Override{Matcher: Matcher{ID: "byName", Options: from}, Properties: props})
	return p
}

// cellColor colours a table column's cells by the thresholds.
func (p *Panel) cellColor(field string) *Panel {
	p.FieldConfig.Overrides = append(p.FieldConfig.Overrides, Override{Matcher: Matcher{ID: "byName", Options: field},
		Properties: []Property{{ID: "custom.cellOptions", Value: map[string]any{"type": "color-background"}}}})
	return p
}

func (p *Panel) transform(id string, options map[string]any) *Panel {
	p.Transformations = append(p.Transformations, &Transformation{ID: id, Options: options})
	return p
}

// sortBy sorts a table's rows by field, descending when desc.
func (p *Panel) sortBy(field string, desc bool) *Panel {
	return p.transform("sortBy", map[string]any{"fields": map[string]any{}, "sort": []any{map[string]any{"field": field, "desc": desc}}})
}

// merge joins the tables of several queries on their common columns.
func (p *Panel) merge() *Panel { return p.transform("merge", map[string]any{}) }

// hide hides fields of a table or chart.
func (p *Panel) hide(fields ...string) *Panel {
	ex := map[string]any{}
	for _, f := range fields {
		ex[f] = true
	}
	return p.transform("organize", map[string]any{"excludeByName": ex, "indexByName": map[string]any{}, "renameByName": map[string]any{}})
}

func (p *Panel) opt(key string, v any) *Panel { p.Options[key] = v; return p }

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	panic(fmt.Sprintf("dashboards: threshold %v is not a number", v))
}

// Variables.

// tagVar is a multi-value variable over the values of an InfluxDB tag, with
// "All" as the regex .* (which also keeps points without the tag).
func tagVar(name, label, measurement, where string) *Variable {
	q := `SHOW TAG VALUES`
	if measurement != "" {
		q += " FROM " + source(measurement)
	}
	q += fmt.Sprintf(` WITH KEY = "%s"`, name)
	if where != "" {
		q += " WHERE " + where
	}
	return &Variable{Type: "query", Name: name, Label: label, Datasource: Influx, Query: q, Definition: q,
		Refresh: 1, Multi: true, IncludeAll: true, AllValue: ".*", Sort: 1,
		Current: VariableOption{Text: []string{"All"}, Value: []string{"$__all"}, Selected: true},
		Options: []VariableOption{}}
}

// promVar is a variable over the values of a Prometheus label.
func promVar(name, label, query string) *Variable {
	return &Variable{Type: "query", Name: name, Label: label, Datasource: Prometheus, Query: query, Definition: query,
		Refresh: 2, Multi: true, IncludeAll: true, AllValue: ".*", Sort: 1,
		Current: VariableOption{Text: []string{"All"}, Value: []string{"$__all"}, Selected: true},
		Options: []VariableOption{}}
}

// annotation marks the rows of an InfluxQL query on time series panels.
func annotation(name, color, query, text, tags string) *Annotation {
	return &Annotation{Name: name, Datasource: Influx, Enable: true, IconColor: color, Query: query, TextColumn: text, TagsColumn: tags}
}
