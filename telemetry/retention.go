package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Retention policies of the layout the gateway keeps in InfluxDB 1.x: raw
// readings expire, their one-minute rollups last longer, and what the
// gateway derives (violations, coverage, cases, KPIs) and device events
// stay for ever. RPRaw is the database's default policy, so a query that
// names no policy reads raw readings.
const (
	RPRaw     = "raw"
	RPRollup  = "rollup_1m"
	RPForever = "forever"
)

// ForeverMeasurements are written to RPForever; every other measurement
// goes to the default policy, RPRaw.
var ForeverMeasurements = []string{MeasurementEvent, "violation", "coverage", "case", "case_kpi"}

// RollupKinds are the kinds whose readings are rolled up per minute.
var RollupKinds = []string{KindBin, KindTruck, KindToilet, KindSweeper}

// Retention is how long each class of data is kept, as InfluxQL durations
// ("90d", "104w", "2160h") or "INF" for ever.
type Retention struct {
	Raw     string
	Rollup  string
	Forever string
}

// DefaultRetention keeps raw readings 90 days, rollups two years, the rest
// for ever.
func DefaultRetention() Retention {
	return Retention{Raw: "90d", Rollup: "104w", Forever: "INF"}
}

var influxDuration = regexp.MustCompile(`^(?i:inf|([0-9]+(ns|u|µ|ms|s|m|h|d|w))+)$`)

// Validate reports a duration InfluxQL does not take, or a raw period
// shorter than the hour a rollup needs to be computed from it.
func (r Retention) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"raw", r.Raw}, {"rollup", r.Rollup}, {"forever", r.Forever}} {
		if !influxDuration.MatchString(f.v) {
			errs = append(errs, fmt.Errorf("retention.%s: %q is not an InfluxQL duration such as 90d, 104w or INF", f.name, f.v))
		}
	}
	if len(errs) == 0 {
		if d, _ := parseInfluxDuration(r.Raw); d != 0 && d < time.Hour {
			errs = append(errs, fmt.Errorf("retention.raw: %s is shorter than one hour (InfluxDB's minimum)", r.Raw))
		}
	}
	return errors.Join(errs...)
}

// parseInfluxDuration reads an InfluxQL duration; INF is 0.
func parseInfluxDuration(s string) (time.Duration, error) {
	if strings.EqualFold(s, "inf") {
		return 0, nil
	}
	var total time.Duration
	re := regexp.MustCompile(`([0-9]+)(ns|u|µ|ms|s|m|h|d|w)`)
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, err
		}
		unit := map[string]time.Duration{"ns": 1, "u": time.Microsecond, "µ": time.Microsecond, "ms": time.Millisecond,
			"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		total += time.Duration(n) * unit
	}
	return total, nil
}

// RouteBucket returns the write bucket ("database/policy") of a
// measurement under the managed layout: ForeverMeasurements go to
// RPForever, the rest to the default policy (the empty string: the
// writer's own bucket).
func RouteBucket(database string) func(measurement string) string {
	forever := database + "/" + RPForever
	return func(m string) string {
		if slices.Contains(ForeverMeasurements, m) {
			return forever
		}
		return ""
	}
}

// InfluxAdmin speaks InfluxQL to an InfluxDB 1.x (or the v1 API of a
// later version) to keep the retention layout.
type InfluxAdmin struct {
	URL      string
	Database string
	// Token is "user:password" on 1.x with authentication, else empty.
	Token  string
	Client *http.Client
	Logger *slog.Logger
}

// rollupCQName is the name of kind's rollup continuous query; it ends with
// a digest of the query, so a changed definition gets a new query and the
// old one is dropped.
func rollupCQName(kind, body string) string {
	h := sha256.Sum256([]byte(body))
	return "sanigate_rollup_1m_" + kind + "_" + hex.EncodeToString(h[:4])
}

// RollupSelect is the SELECT ... INTO that rolls kind's readings up per
// minute into RPRollup: mean of measured values, max of counters (they
// only grow), under the same field names, so a query reads either policy
// alike. where is added as a WHERE clause when not empty.
func RollupSelect(database, kind, where string) string {
	var sel []string
	for _, f := range rollupFields(kind) {
		agg := "mean"
		if f.typ == Int {
			agg = "max"
		}
		sel = append(sel, fmt.Sprintf(`%s(%q) AS %q`, agg, f.name, f.name))
	}
	q := fmt.Sprintf(`SELECT %s INTO %q.%q.%q FROM %q.%q.%q`, strings.Join(sel, ", "),
		database, RPRollup, kind, database, RPRaw, kind)
	if where != "" {
		q += " WHERE " + where
	}
	return q + " GROUP BY time(1m), *"
}

type namedField struct {
	name string
	typ  FieldType
}

// rollupFields are kind's numeric fields, sorted by name.
func rollupFields(kind string) []namedField {
	var out []namedField
	for name, spec := range schemas[kind] {
		if spec.typ == Float || spec.typ == Int {
			out = append(out, namedField{name, spec.typ})
		}
	}
	slices.SortFunc(out, func(a, b namedField) int { return strings.Compare(a.name, b.name) })
	return out
}

// Ensure makes the database hold the layout: the three retention policies
// with the configured durations (RPRaw the default), and one continuous
// query per kind for the minute rollups. It is idempotent: what is already
// right is left alone, a changed duration is altered, a changed rollup
// query replaces the old one. On InfluxDB 2.x and later, which have no
// retention policies to alter over InfluxQL, it changes nothing, logs what
// to set up instead, and returns ErrNotManaged.
func (a *InfluxAdmin) Ensure(ctx context.Context, r Retention) error {
	if err := r.Validate(); err != nil {
		return err
	}
	version, err := a.version(ctx)
	if err != nil {
		return err
	}
	// A 1.x built from source says "unknown"; 2.x says "v2.7.10" or "2.7.10".
	if v := strings.TrimPrefix(version, "v"); v != "" && v[0] >= '2' && v[0] <= '9' {
		a.explainV2(version, r)
		return ErrNotManaged
	}
	if _, err := a.Query(ctx, fmt.Sprintf("CREATE DATABASE %q", a.Database)); err != nil {
		return err
	}
	if err := a.ensurePolicies(ctx, r); err != nil {
		return err
	}
	return a.ensureRollups(ctx)
}

// ErrNotManaged is returned by Ensure when the InfluxDB is not a 1.x that
// takes retention policies over InfluxQL; writes then keep to the
// configured bucket.
var ErrNotManaged = errors.New("influxdb retention not managed by the gateway")

func (a *InfluxAdmin) ensurePolicies(ctx context.Context, r Retention) error {
	res, err := a.Query(ctx, fmt.Sprintf("SHOW RETENTION POLICIES ON %q", a.Database))
	if err != nil {
		return err
	}
	type rp struct {
		duration time.Duration
		def      bool
	}
	have := map[string]rp{}
	for _, s := range res {
		for _, row := range s.rows() {
			d, _ := time.ParseDuration(fmt.Sprint(row["duration"]))
			def, _ := row["default"].(bool)
			have[fmt.Sprint(row["name"])] = rp{d, def}
		}
	}
	for _, want := range []struct {
		name, dur string
		def       bool
	}{{RPRaw, r.Raw, true}, {RPRollup, r.Rollup, false}, {RPForever, r.Forever, false}} {
		d, _ := parseInfluxDuration(want.dur)
		def := ""
		if want.def {
			def = " DEFAULT"
		}
		cur, ok := have[want.name]
		var q string
		switch {
		case !ok:
			q = fmt.Sprintf("CREATE RETENTION POLICY %q ON %q DURATION %s REPLICATION 1%s", want.name, a.Database, want.dur, def)
		case cur.duration != d || (want.def && !cur.def):
			q = fmt.Sprintf("ALTER RETENTION POLICY %q ON %q DURATION %s%s", want.name, a.Database, want.dur, def)
		default:
			continue
		}
		if _, err := a.Query(ctx, q); err != nil {
			return err
		}
		a.log().Info("influxdb retention policy set", "database", a.Database, "policy", want.name, "duration", want.dur, "default", want.def)
	}
	return nil
}

func (a *InfluxAdmin) ensureRollups(ctx context.Context) error {
	res, err := a.Query(ctx, "SHOW CONTINUOUS QUERIES")
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, s := range res {
		if s.Name != a.Database {
			continue
		}
		for _, row := range s.rows() {
			have[fmt.Sprint(row["name"])] = true
		}
	}
	for _, kind := range RollupKinds {
		body := RollupSelect(a.Database, kind, "")
		name := rollupCQName(kind, body)
		for old := range have {
			if old != name && strings.HasPrefix(old, "sanigate_rollup_1m_"+kind+"_") {
				if _, err := a.Query(ctx, fmt.Sprintf("DROP CONTINUOUS QUERY %q ON %q", old, a.Database)); err != nil {
					return err
				}
				a.log().Info("influxdb rollup query replaced", "database", a.Database, "kind", kind, "old", old)
			}
		}
		if have[name] {
			continue
		}
		// RESAMPLE FOR 10m recomputes the last ten minutes each minute, so
		// readings that arrive a few minutes late are still rolled up.
		q := fmt.Sprintf("CREATE CONTINUOUS QUERY %q ON %q RESAMPLE EVERY 1m FOR 10m BEGIN %s END", name, a.Database, body)
		if _, err := a.Query(ctx, q); err != nil {
			return err
		}
		a.log().Info("influxdb rollup query created", "database", a.Database, "kind", kind, "query", name)
	}
	return nil
}

// Backfill computes the rollups of [from, to) from the raw readings, as
// the continuous queries do for the last minutes: after an upgrade, or
// when the continuous queries were off.
//
// It works in windows of backfillWindow, so that no single query holds
// more than a few hours of readings in InfluxDB's memory.
func (a *InfluxAdmin) Backfill(ctx context.Context, from, to time.Time) error {
	from = from.Truncate(time.Minute)
	for start := from; start.Before(to); start = start.Add(backfillWindow) {
		end := start.Add(backfillWindow)
		if end.After(to) {
			end = to
		}
		for _, kind := range RollupKinds {
			where := fmt.Sprintf("time >= %d AND time < %d", start.UnixNano(), end.UnixNano())
			if _, err := a.Query(ctx, RollupSelect(a.Database, kind, where)); err != nil {
				return fmt.Errorf("backfill %s rollups from %s: %w", kind, start.UTC().Format(time.RFC3339), err)
			}
		}
	}
	return nil
}

// backfillWindow is the span of raw readings one backfill query rolls up.
const backfillWindow = 6 * time.Hour

func (a *InfluxAdmin) explainV2(version string, r Retention) {
	a.log().Warn("influxdb is not 1.x: the gateway does not change its retention; set it up once by hand",
		"version", version,
		"raw", fmt.Sprintf("the bucket the gateway writes to: retention %s", r.Raw),
		"rollup", fmt.Sprintf("a bucket %s_%s with retention %s, fed by a task every 1m: from(bucket) |> range(start: -10m) |> aggregateWindow(every: 1m, fn: mean) |> to(bucket: \"%s_%s\")", a.Database, RPRollup, r.Rollup, a.Database, RPRollup),
		"forever", fmt.Sprintf("a bucket %s_%s with infinite retention for %v, mapped by DBRP to database %s, policy %s", a.Database, RPForever, ForeverMeasurements, a.Database, RPForever))
}

func (a *InfluxAdmin) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

func (a *InfluxAdmin) client() *http.Client {
	if a.Client == nil {
		return &http.Client{Timeout: 5 * time.Minute}
	}
	return a.Client
}

func (a *InfluxAdmin) version(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.URL, "/")+"/ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return "", fmt.Errorf("influxdb ping: %w", err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Influxdb-Version"), nil
}

// Series is one series of an InfluxQL answer.
type Series struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Values  [][]any  `json:"values"`
}

func (s Series) rows() []map[string]any {
	out := make([]map[string]any, 0, len(s.Values))
	for _, v := range s.Values {
		m := map[string]any{}
		for i, c := range s.Columns {
			if i < len(v) {
				m[c] = v[i]
			}
		}
		out = append(out, m)
	}
	return out
}

// Query runs one InfluxQL statement against the database.
func (a *InfluxAdmin) Query(ctx context.Context, q string) ([]Series, error) {
	form := url.Values{"q": {q}, "db": {a.Database}}
	if user, pass, ok := strings.Cut(a.Token, ":"); ok {
		form.Set("u", user)
		form.Set("p", pass)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.URL, "/")+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("influxdb query: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("influxdb query %q: reading the answer: %w", firstWords(q), err)
	}
	var body struct {
		Results []struct {
			Series []Series `json:"series"`
			Error  string   `json:"error"`
		} `json:"results"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("influxdb query %q: %s: %.200s", firstWords(q), resp.Status, raw)
	}
	if body.Error != "" {
		return nil, fmt.Errorf("influxdb query %q: %s", firstWords(q), body.Error)
	}
	var out []Series
	for _, r := range body.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("influxdb query %q: %s", firstWords(q), r.Error)
		}
		out = append(out, r.Series...)
	}
	return out, nil
}

func firstWords(q string) string {
	if len(q) > 60 {
		return q[:60] + "…"
	}
	return q
}
