package dashboards

import "fmt"

// rates are the assessment figures (docs/domain.md, 综合评价), each recomputed
// over the selected period from the daily counts of case_kpi, so a period's
// rate weighs every case equally rather than every day.
var rates = []struct {
	field, title, num, den string
	lowIsGood              bool
}{
	{"closure_rate", "结案率 Closure rate", "closed", "due", false},
	{"on_time_rate", "按期结案率 On-time rate", "closed_on_time", "due", false},
	{"rework_rate", "返工率 Rework rate", "reworked", "due", true},
	{"extension_rate", "延期率 Extension rate", "extended", "due", true},
}

// Assessment ranks units and districts by how they handle their cases, and
// shows the rates over time.
func Assessment() *Dashboard {
	b := newBoard("sanigate-assessment", "考核评价 Assessment",
		"Closure, on-time, rework and extension rates per unit and district, ranked and over time. Rates over a period are recomputed from the daily counts: closed / due, closed on time / due, reworked / due, extended / due.", "assessment")
	b.d.Time = TimeRange{From: "now-30d", To: "now"}
	b.d.Refresh = "5m"
	b.vars(
		tagVar("district", "区 District", "case_kpi", ""),
		tagVar("unit", "责任单位 Unit", "case_kpi", match("district")),
	)
	k := match("district", "unit")

	b.row("排名 Ranking")
	for _, r := range rates {
		p := b.add(6, 9, bargauge(r.title+"(按单位) by unit", "percentunit",
			influxTable(fmt.Sprintf(`SELECT sum("%s") / sum("due") AS "%s" FROM "forever"."case_kpi" WHERE $timeFilter AND %s GROUP BY "unit"`, r.num, r.field, k))).
			minmax(0, 1).sortBy(r.field, !r.lowIsGood).hide("Time"))
		if r.lowIsGood {
			p.thresholds("green", 0.05, "orange", 0.1, "red")
		} else {
			p.thresholds("red", 0.8, "orange", 0.9, "green")
		}
	}
	summary := func(group string) *Target {
		return influxTable(`SELECT sum("due") AS "due", sum("closed") AS "closed", sum("closed_on_time") AS "closed_on_time", ` +
			`sum("reworked") AS "reworked", sum("extended") AS "extended", ` +
			`sum("closed") / sum("due") AS "closure_rate", sum("closed_on_time") / sum("due") AS "on_time_rate", ` +
			`sum("reworked") / sum("due") AS "rework_rate", sum("extended") / sum("due") AS "extension_rate", ` +
			`mean("mean_accept_s") AS "mean_accept_s", mean("mean_close_s") AS "mean_close_s", sum("recurrences") AS "recurrences" ` +
			`FROM "forever"."case_kpi" WHERE $timeFilter AND ` + k + ` GROUP BY "` + group + `"`)
	}
	named := func(p *Panel) *Panel {
		p.rename("due", "应结案 due", "").rename("closed", "结案 closed", "").rename("closed_on_time", "按期结案 on time", "").
			rename("reworked", "返工 reworked", "").rename("extended", "延期 extended", "").
			rename("mean_accept_s", "平均受理 mean to accept", "s").rename("mean_close_s", "平均结案 mean to close", "s").
			rename("recurrences", "重复发生 recurrences", "")
		for _, r := range rates {
			p.rename(r.field, r.title, "percentunit")
		}
		return p.hide("Time").sortBy("closure_rate", true)
	}
	b.add(24, 8, named(table("考核汇总(按单位) Assessment by unit", "", summary("unit"))))
	b.add(24, 7, named(table("考核汇总(按区) Assessment by district", "", summary("district"))))

	b.row("趋势 Over time")
	for _, r := range rates[:2] {
		b.add(12, 8, timeseries(r.title+"趋势 per day by unit", "percentunit",
			influx(fmt.Sprintf(`SELECT sum("%s") / sum("due") FROM "forever"."case_kpi" WHERE $timeFilter AND %s GROUP BY time(1d), "unit" fill(none) tz('Asia/Shanghai')`, r.num, k)).alias("$tag_unit")).
			minmax(0, 1).thresholds("red", 0.9, "green").thresholdLines())
	}
	var lows []*Target
	for _, r := range rates[2:] {
		lows = append(lows, influx(fmt.Sprintf(`SELECT sum("%s") / sum("due") FROM "forever"."case_kpi" WHERE $timeFilter AND %s GROUP BY time(1d) fill(none) tz('Asia/Shanghai')`, r.num, k)).alias(r.title))
	}
	b.add(12, 8, timeseries("返工率与延期率 Rework and extension rates per day", "percentunit", lows...).minmax(0, 1))
	b.add(12, 8, timeseries("平均受理与结案时长 Mean time to accept and to close", "s",
		influx(`SELECT mean("mean_accept_s") FROM "forever"."case_kpi" WHERE $timeFilter AND `+k+` GROUP BY time(1d) fill(none) tz('Asia/Shanghai')`).alias("受理 accept"),
		influx(`SELECT mean("mean_close_s") FROM "forever"."case_kpi" WHERE $timeFilter AND `+k+` GROUP BY time(1d) fill(none) tz('Asia/Shanghai')`).alias("结案 close")))
	b.add(12, 8, bars("每日案件动态 Case actions per day", "short", true,
		influx(`SELECT count("count") FROM "forever"."case" WHERE $timeFilter AND `+k+` GROUP BY time(1d), "action" fill(0) tz('Asia/Shanghai')`).alias("$tag_action")))
	b.add(12, 8, bars("未结与超期 Open and overdue cases", "short", false,
		influx(`SELECT sum("open") FROM "forever"."case_kpi" WHERE $timeFilter AND `+k+` GROUP BY time(1d) fill(none) tz('Asia/Shanghai')`).alias("未结 open"),
		influx(`SELECT sum("overdue") FROM "forever"."case_kpi" WHERE $timeFilter AND `+k+` GROUP BY time(1d) fill(none) tz('Asia/Shanghai')`).alias("超期 overdue"),
		influx(`SELECT sum("recurrences") FROM "forever"."case_kpi" WHERE $timeFilter AND `+k+` GROUP BY time(1d) fill(none) tz('Asia/Shanghai')`).alias("重复发生 recurrences")))
	b.add(24, 8, table("超期案件 Overdue cases", "",
		influxTable(`SELECT "case_id", "type", "severity", "unit", "district", "elapsed_s" FROM "forever"."case" WHERE "action" = 'overdue' AND $timeFilter AND `+k)).
		rename("elapsed_s", "已用时 elapsed", "s"))
	return b.build()
}
