package dashboards

// The types below are the subset of Grafana's dashboard JSON model (schema
// version 39, Grafana 10 and later) that sanigate's dashboards use. Field
// names follow Grafana's JSON; zero values are left out.

// SchemaVersion is the Grafana dashboard schema version the JSON is written in.
const SchemaVersion = 39

// Data source uids, as provisioned by provisioning/datasources/sanigate.yaml.
const (
	InfluxUID     = "sanigate-influxdb"
	PrometheusUID = "sanigate-prometheus"
)

// DatasourceRef names a data source by type and uid.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Influx and Prometheus are the references to the provisioned data sources.
var (
	Influx     = &DatasourceRef{Type: "influxdb", UID: InfluxUID}
	Prometheus = &DatasourceRef{Type: "prometheus", UID: PrometheusUID}
)

// Dashboard is one Grafana dashboard.
type Dashboard struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Description   string      `json:"description,omitempty"`
	Tags          []string    `json:"tags"`
	Timezone      string      `json:"timezone"`
	Editable      bool        `json:"editable"`
	GraphTooltip  int         `json:"graphTooltip"`
	SchemaVersion int         `json:"schemaVersion"`
	Version       int         `json:"version"`
	Refresh       string      `json:"refresh,omitempty"`
	Time          TimeRange   `json:"time"`
	Templating    Templating  `json:"templating"`
	Annotations   Annotations `json:"annotations"`
	Links         []Link      `json:"links"`
	Panels        []*Panel    `json:"panels"`
}

// TimeRange is a dashboard's default time range, in Grafana's relative syntax.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds a dashboard's variables.
type Templating struct {
	List []*Variable `json:"list"`
}

// Annotations holds a dashboard's annotation queries.
type Annotations struct {
	List []*Annotation `json:"list"`
}

// Link is a link in a dashboard's header; Tags links to the dashboards
// carrying them.
type Link struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	Tags        []string `json:"tags"`
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
}

// Variable is a template variable.
type Variable struct {
	Type       string           `json:"type"` // query, custom, interval
	Name       string           `json:"name"`
	Label      string           `json:"label"`
	Datasource *DatasourceRef   `json:"datasource,omitempty"`
	Query      string           `json:"query"`
	Definition string           `json:"definition,omitempty"`
	Refresh    int              `json:"refresh"` // 1: on load, 2: on time range change
	Multi      bool             `json:"multi"`
	IncludeAll bool             `json:"includeAll"`
	AllValue   string           `json:"allValue,omitempty"`
	Sort       int              `json:"sort"`
	Current    VariableOption   `json:"current"`
	Options    []VariableOption `json:"options"`
	Hide       int              `json:"hide"`
}

// VariableOption is a variable's value as Grafana stores it.
type VariableOption struct {
	Text     any  `json:"text"`
	Value    any  `json:"value"`
	Selected bool `json:"selected,omitempty"`
}

// Annotation is an annotation query: InfluxQL whose rows mark events on
// time series panels.
type Annotation struct {
	Name       string         `json:"name"`
	Datasource *DatasourceRef `json:"datasource"`
	Enable     bool           `json:"enable"`
	IconColor  string         `json:"iconColor"`
	Query      string         `json:"query"`
	TextColumn string         `json:"textColumn,omitempty"`
	TagsColumn string         `json:"tagsColumn,omitempty"`
}

// GridPos places a panel on the dashboard's 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Panel is one panel, or a row (Type "row") that heads the panels below it.
type Panel struct {
	ID              int               `json:"id"`
	Type            string            `json:"type"`
	Title           string            `json:"title"`
	Description     string            `json:"description,omitempty"`
	GridPos         GridPos           `json:"gridPos"`
	Datasource      *DatasourceRef    `json:"datasource,omitempty"`
	Targets         []*Target         `json:"targets,omitempty"`
	TimeFrom        string            `json:"timeFrom,omitempty"`
	Interval        string            `json:"interval,omitempty"`
	FieldConfig     *FieldConfig      `json:"fieldConfig,omitempty"`
	Options         map[string]any    `json:"options,omitempty"`
	Transformations []*Transformation `json:"transformations,omitempty"`
	Collapsed       *bool             `json:"collapsed,omitempty"`
	Panels          []*Panel          `json:"panels,omitempty"` // of a row
}

// Target is one query of a panel: InfluxQL (Query) or PromQL (Expr).
type Target struct {
	RefID      string         `json:"refId"`
	Datasource *DatasourceRef `json:"datasource"`
	// InfluxQL, raw mode.
	Query        string `json:"query,omitempty"`
	RawQuery     bool   `json:"rawQuery,omitempty"`
	ResultFormat string `json:"resultFormat,omitempty"` // time_series or table
	Alias        string `json:"alias,omitempty"`
	// PromQL.
	Expr         string `json:"expr,omitempty"`
	LegendFormat string `json:"legendFormat,omitempty"`
	Instant      bool   `json:"instant,omitempty"`
	Range        bool   `json:"range,omitempty"`
}

// FieldConfig is a panel's field defaults and overrides.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []Override    `json:"overrides"`
}

// FieldDefaults are the display settings of a panel's fields.
type FieldDefaults struct {
	Unit        string         `json:"unit,omitempty"`
	Decimals    *int           `json:"decimals,omitempty"`
	Min         *float64       `json:"min,omitempty"`
	Max         *float64       `json:"max,omitempty"`
	NoValue     string         `json:"noValue,omitempty"`
	DisplayName string         `json:"displayName,omitempty"`
	Color       map[string]any `json:"color,omitempty"`
	Thresholds  *Thresholds    `json:"thresholds,omitempty"`
	Custom      map[string]any `json:"custom,omitempty"`
	Mappings    []any          `json:"mappings"`
}

// Thresholds colour values by the steps they reach.
type Thresholds struct {
	Mode  string `json:"mode"` // absolute or percentage
	Steps []Step `json:"steps"`
}

// Step is one threshold: values at or above Value take Color. The first
// step's Value is nil (minus infinity).
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// Override changes field settings for the fields a matcher selects.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields, for example by name.
type Matcher struct {
	ID      string `json:"id"`
	Options any    `json:"options"`
}

// Property is one overridden field setting.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Transformation reshapes query results before display.
type Transformation struct {
	ID      string         `json:"id"`
	Options map[string]any `json:"options"`
}
