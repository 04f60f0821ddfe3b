package dashboards

// Toilets shows the public toilets: ammonia and hydrogen sulphide against
// the class limits, consumables, occupancy and visits, water and power.
func Toilets() *Dashboard {
	b := newBoard("sanigate-toilets", "公共厕所 Toilets",
		"Air quality against GB/T 17217 limits, consumables, occupancy and visits, water and power use of the public toilets.", "toilets")
	b.vars(
		tagVar("district", "区 District", "toilet", ""),
		tagVar("contractor", "运营单位 Operator", "toilet", ""),
		tagVar("device", "公厕 Toilet", "toilet", match("district", "contractor")),
	)
	f := match("district", "contractor", "device")
	series := func(agg, field, every string) *Target {
		return influx(`SELECT ` + agg + `("` + field + `") FROM "toilet" WHERE $timeFilter AND ` + f + ` GROUP BY time(` + every + `), "device" fill(none)`).alias("$tag_device")
	}
	latest := func(field string) *Target {
		return influx(`SELECT last("` + field + `") FROM "toilet" WHERE $timeFilter AND ` + f + ` GROUP BY "device"`).alias("$tag_device")
	}
	perDevice := map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}

	b.row("空气 Air")
	b.add(12, 9, timeseries("氨气 NH₃ against the class limits", "conmgm3", series("mean", "nh3_mgm3", "$__interval")).
		thresholds("green", 0.3, "yellow", 1, "orange", 3, "red").thresholdLines().
		describe("GB/T 17217 limits: class 1 toilets 0.3 mg/m³ (yellow line), class 2 1 mg/m³ (orange), class 3 3 mg/m³ (red). toilet_odour is raised per toilet against its own class."))
	b.add(12, 9, timeseries("硫化氢 H₂S against the limit", "conmgm3", series("mean", "h2s_mgm3", "$__interval")).
		thresholds("green", 0.01, "red").thresholdLines())
	b.add(12, 8, bargauge("当前氨气 NH₃ now", "conmgm3", latest("nh3_mgm3")).from("15m").opt("reduceOptions", perDevice).
		thresholds("green", 0.3, "yellow", 1, "orange", 3, "red"))
	b.add(12, 8, table("异味超标记录 Odour violations", "",
		influxTable(`SELECT "severity", "device", "district", "summary", "duration_s", "resolved" FROM "forever"."violation" WHERE "state" <> 'resolved' AND "type" = 'toilet_odour' AND $timeFilter AND `+f)).
		rename("duration_s", "时长 duration", "s"))

	b.row("耗材 Consumables")
	b.add(8, 10, bargauge("厕纸余量 Paper left", "percent", latest("paper_pct")).from("1h").opt("reduceOptions", perDevice).
		minmax(0, 100).thresholds("red", 10, "orange", 25, "green"))
	b.add(8, 10, bargauge("洗手液余量 Soap left", "percent", latest("soap_pct")).from("1h").opt("reduceOptions", perDevice).
		minmax(0, 100).thresholds("red", 10, "orange", 25, "green"))
	b.add(8, 10, timeseries("耗材趋势 Consumables over time (mean)", "percent",
		influx(`SELECT mean("paper_pct") AS "paper", mean("soap_pct") AS "soap" FROM "toilet" WHERE $timeFilter AND `+f+` GROUP BY time($__interval) fill(none)`).alias("$col")).
		minmax(0, 100).thresholds("green", 10, "red").thresholdLines())

	b.row("使用 Use")
	b.add(12, 8, timeseries("厕位占用 Stalls occupied", "short", series("max", "stalls_occupied", "$__interval")))
	b.add(12, 8, bars("每小时如厕人次 Visits per hour", "short", true,
		influx(`SELECT non_negative_difference(last("people_in")) FROM "toilet" WHERE $timeFilter AND `+f+` GROUP BY time(1h), "device" fill(none)`).alias("$tag_device")).
		describe("Differences of the people_in counter; a counter reset is not counted as negative visits."))
	b.add(12, 8, bargauge("今日如厕人次 Visits today", "short",
		influx(`SELECT spread("people_in") FROM "toilet" WHERE $timeFilter AND `+f+` GROUP BY "device"`).alias("$tag_device")).
		from("now/d").opt("reduceOptions", perDevice))
	b.add(12, 8, table("如厕安全与故障 Safety, leak, cold and consumables violations", "",
		influxTable(`SELECT "type", "severity", "device", "district", "summary", "resolved" FROM "forever"."violation" WHERE "state" <> 'resolved' AND "type" =~ /^(toilet_safety|toilet_leak|toilet_cold|toilet_consumables)$/ AND $timeFilter AND `+f)))

	b.row("水电 Water and power")
	b.add(4, 8, stat("今日用水 Water today", "litre",
		influx(`SELECT sum("spread") FROM (SELECT spread("water_l") FROM "toilet" WHERE $timeFilter AND `+f+` GROUP BY "device")`)).from("now/d"))
	b.add(8, 8, bars("每小时用水 Water per hour", "litre", true,
		influx(`SELECT non_negative_difference(last("water_l")) FROM "toilet" WHERE $timeFilter AND `+f+` GROUP BY time(1h), "device" fill(none)`).alias("$tag_device")))
	b.add(4, 8, stat("今日用电 Power today", "kwatth",
		influx(`SELECT sum("spread") FROM (SELECT spread("power_kwh") FROM "toilet" WHERE $timeFilter AND `+f+` GROUP BY "device")`)).from("now/d").decimals(1))
	b.add(8, 8, bars("每小时用电 Power per hour", "kwatth", true,
		influx(`SELECT non_negative_difference(last("power_kwh")) FROM "toilet" WHERE $timeFilter AND `+f+` GROUP BY time(1h), "device" fill(none)`).alias("$tag_device")))
	b.longRange("toilet", f, [3]string{"nh3_mgm3", "氨气(90天) NH₃, 90 days", "conmgm3"},
		[3]string{"h2s_mgm3", "硫化氢(90天) H₂S, 90 days", "conmgm3"})
	return b.build()
}
