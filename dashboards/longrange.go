package dashboards

// Retention policies the gateway keeps in InfluxDB (telemetry.RPRollup,
// telemetry.RPForever): raw readings are the default policy and expire
// after 90 days by default; their one-minute rollups (same field names,
// mean of measured values, max of counters) last two years; events,
// violations, coverage, cases and KPIs are kept for ever.
const (
	rpRollup  = "rollup_1m"
	rpForever = "forever"
)

// foreverMeasurements are read from rpForever.
var foreverMeasurements = map[string]bool{"event": true, "violation": true, "coverage": true, "case": true, "case_kpi": true}

// source is the FROM of a measurement: qualified by its retention policy
// when it is not the default one.
func source(measurement string) string {
	if foreverMeasurements[measurement] {
		return `"` + rpForever + `"."` + measurement + `"`
	}
	return `"` + measurement + `"`
}

// longRange adds a row of 90-day panels that read the one-minute rollups,
// so a long range draws from a few thousand points per series and outlives
// the raw readings. Each query is a mean per $__interval (at least an hour)
// of the rollups' field, grouped by tag.
func (b *board) longRange(kind, f string, series ...[3]string) {
	b.row("长期趋势 Long range (1-minute rollups, 90 days)")
	w := 24 / len(series)
	for _, s := range series {
		field, title, unit := s[0], s[1], s[2]
		p := b.add(w, 8, timeseries(title, unit,
			influx(`SELECT mean("`+field+`") FROM "`+rpRollup+`"."`+kind+`" WHERE $timeFilter AND `+f+
				` GROUP BY time($__interval), "district" fill(none)`).alias("$tag_district")).
			from("90d").describe("From the one-minute rollups, which InfluxDB keeps longer than the raw readings."))
		p.Interval = "1h"
	}
}
