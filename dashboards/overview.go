package dashboards

import "fmt"

// reportingByKind counts the devices of each kind that reported within the
// panel's time range: the inner query keeps one row per device.
func reportingByKind(kind, field, where, groupBy string) *Target {
	inner := fmt.Sprintf(`SELECT last("%s") FROM "%s" WHERE $timeFilter AND %s GROUP BY "device"%s`, field, kind, where, groupBy)
	q := fmt.Sprintf(`SELECT count("last") FROM (%s)`, inner)
	if groupBy != "" {
		q += ` GROUP BY "district"`
	}
	return influx(q)
}

// kindFields is a field every reading of each kind carries, to count readings by.
var kindFields = []struct{ kind, field, label string }{
	{"bin", "fill_pct", "垃圾桶 bins"},
	{"truck", "speed_kmh", "收运车 trucks"},
	{"toilet", "nh3_mgm3", "公厕 toilets"},
	{"sweeper", "speed_kmh", "清扫车 sweepers"},
}

// Overview is the city office's front page: devices reporting and silent,
// open and overdue cases, today's violations and where the open ones are.
func Overview() *Dashboard {
	b := newBoard("sanigate-overview", "城市总览 City overview",
		"Devices reporting and silent, cases open and overdue, today's violations, and a map of open violations.", "overview")
	b.vars(
		tagVar("district", "区 District", "", ""),
		tagVar("contractor", "承包商 Contractor", "", ""),
	)
	dc := match("district", "contractor")

	b.row("设备 Devices")
	var now, byDistrict []*Target
	for _, k := range kindFields {
		now = append(now, reportingByKind(k.kind, k.field, dc, "").alias(k.label))
		byDistrict = append(byDistrict, reportingByKind(k.kind, k.field, dc, `, "district"`).alias("$tag_district "+k.label))
	}
	b.add(8, 6, stat("在线设备 Devices reporting (15 min)", "short", now...).from("15m").
		describe("Devices of each kind with at least one reading in the last 15 minutes."))
	b.add(8, 6, bargauge("在线设备(按区) Devices reporting by district (15 min)", "short", byDistrict...).from("15m").
		opt("reduceOptions", map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}))
	b.add(8, 6, table("离线设备 Silent devices by kind and district", "short",
		influxTable(`SELECT count("count") AS "silent" FROM "forever"."violation" WHERE "type" = 'device_offline' AND "resolved" = false AND $timeFilter AND `+dc+` GROUP BY "kind", "district"`)).
		from("7d").hide("Time").thresholds("green", 1, "red").cellColor("silent").
		describe("Open device_offline violations: devices silent for three times their reporting interval, or whose last will was published."))

	b.row("案件 Cases")
	b.add(8, 8, bargauge("未结与超期案件(按区) Open and overdue cases by district", "short",
		influx(`SELECT sum("open") FROM (SELECT last("open") AS "open" FROM "forever"."case_kpi" WHERE $timeFilter AND `+match("district")+` GROUP BY "unit", "district") GROUP BY "district"`).alias("$tag_district 未结 open"),
		influx(`SELECT sum("overdue") FROM (SELECT last("overdue") AS "overdue" FROM "forever"."case_kpi" WHERE $timeFilter AND `+match("district")+` GROUP BY "unit", "district") GROUP BY "district"`).alias("$tag_district 超期 overdue")).
		from("7d").opt("reduceOptions", map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}).
		describe("The latest daily figures of case_kpi, summed over units."))
	caseCount := func(action, as, group string) *Target {
		return influxTable(fmt.Sprintf(`SELECT count("count") AS "%s" FROM "forever"."case" WHERE "action" = '%s' AND $timeFilter AND %s GROUP BY "%s"`, as, action, match("district"), group))
	}
	b.add(8, 8, table("案件动态(按类型) Cases by type", "short",
		caseCount("filed", "立案 filed", "type"), caseCount("closed", "结案 closed", "type"), caseCount("overdue", "超期 overdue", "type")).
		merge().hide("Time").sortBy("立案 filed", true))
	b.add(8, 8, barchart("案件动态(按区) Cases by district", "short", "district", false,
		caseCount("filed", "立案 filed", "district"), caseCount("closed", "结案 closed", "district"), caseCount("overdue", "超期 overdue", "district")).
		merge().hide("Time"))

	b.row("违规 Violations")
	b.add(4, 8, stat("今日违规 Violations today", "short",
		influx(`SELECT count("count") FROM "forever"."violation" WHERE $timeFilter AND `+dc).alias("全部 all"),
		influx(`SELECT count("count") FROM "forever"."violation" WHERE "severity" = 'critical' AND $timeFilter AND `+dc).alias("严重 critical")).
		from("now/d").noValue("0").opt("orientation", "vertical"))
	b.add(8, 8, piechart("今日违规(按类型) Violations today by type", "short",
		influx(`SELECT count("count") FROM "forever"."violation" WHERE $timeFilter AND `+dc+` GROUP BY "type"`).alias("$tag_type")).from("now/d"))
	b.add(12, 8, bars("违规趋势 Violations per hour by severity", "short", true,
		influx(`SELECT count("count") FROM "forever"."violation" WHERE $timeFilter AND `+dc+` GROUP BY time(1h), "severity" fill(0)`).alias("$tag_severity")))
	b.add(24, 12, geomap("未结违规地图 Map of open violations", "markers", "",
		influxTable(`SELECT "lat", "lon", "type", "severity", "device", "summary" FROM "forever"."violation" WHERE "resolved" = false AND $timeFilter AND `+dc)).
		from("7d").describe("Violations not yet resolved by data (the open cases' evidence), at their position."))
	return b.build()
}
