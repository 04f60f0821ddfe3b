package dashboards

// Sweepers shows the street sweepers: route coverage per route and day, the
// distance driven with the brush off or too fast, tracks and speed.
func Sweepers() *Dashboard {
	b := newBoard("sanigate-sweepers", "道路清扫 Sweepers",
		"Sweeping coverage per route and day, brush-off and over-speed distance, tracks and speed of the street sweepers.", "sweepers")
	b.vars(
		tagVar("district", "区 District", "coverage", ""),
		tagVar("contractor", "承包商 Contractor", "coverage", ""),
		tagVar("route", "线路 Route", "coverage", match("district", "contractor")),
		tagVar("device", "清扫车 Sweeper", "sweeper", match("contractor")),
	)
	cov := match("district", "contractor", "route", "device")
	f := match("district", "contractor", "device")
	perRoute := map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}

	b.row("覆盖率 Coverage")
	b.add(14, 9, bars("每日清扫覆盖率 Route coverage per day", "percentunit", false,
		influx(`SELECT mean("fraction") FROM "forever"."coverage" WHERE $timeFilter AND `+cov+` GROUP BY time(1d), "route" fill(none) tz('Asia/Shanghai')`).alias("$tag_route")).
		from("7d").minmax(0, 1).thresholds("red", 0.9, "green").thresholdLines().
		describe("Share of each route covered within 15 m with the brush on at or under the sweeping speed, per sweeping window; under 90 % raises missed_route."))
	b.add(10, 9, bargauge("最近覆盖率 Latest coverage by route", "percentunit",
		influx(`SELECT last("fraction") FROM "forever"."coverage" WHERE $timeFilter AND `+cov+` GROUP BY "route"`).alias("$tag_route")).
		opt("reduceOptions", perRoute).minmax(0, 1).thresholds("red", 0.9, "green"))
	b.add(12, 9, bars("刷盘未开与超速里程 Brush-off and over-speed distance per day", "lengthm", true,
		influx(`SELECT sum("brush_off_m") FROM "forever"."coverage" WHERE $timeFilter AND `+cov+` GROUP BY time(1d), "route" fill(none) tz('Asia/Shanghai')`).alias("刷盘未开 brush off $tag_route"),
		influx(`SELECT sum("over_speed_m") FROM "forever"."coverage" WHERE $timeFilter AND `+cov+` GROUP BY time(1d), "route" fill(none) tz('Asia/Shanghai')`).alias("超速 over speed $tag_route")).
		from("7d").describe("Route length the sweeper passed with the brush off, or faster than the route's sweeping speed; over 20 % of the covered length raises sweeping_quality."))
	b.add(12, 9, table("覆盖明细 Coverage by route and window", "",
		influxTable(`SELECT "route", "device", "fraction", "length_m", "covered_m", "brush_off_m", "over_speed_m" FROM "forever"."coverage" WHERE $timeFilter AND `+cov)).
		from("7d").sortBy("fraction", false).
		rename("fraction", "覆盖率 coverage", "percentunit").rename("length_m", "线路长 length", "lengthm").
		rename("covered_m", "已覆盖 covered", "lengthm").rename("brush_off_m", "刷盘未开 brush off", "lengthm").
		rename("over_speed_m", "超速 over speed", "lengthm").thresholds("red", 0.9, "green").cellColor("fraction"))
	b.add(24, 7, table("漏扫与作业不规范 Missed routes and sweeping quality", "",
		influxTable(`SELECT "type", "severity", "route", "device", "summary", "duration_s" FROM "forever"."violation" WHERE "state" <> 'resolved' AND "type" =~ /^(missed_route|sweeping_quality)$/ AND $timeFilter AND `+match("district", "contractor", "route"))).
		from("7d").rename("duration_s", "时长 duration", "s"))

	b.row("作业 Operation")
	p := b.add(12, 12, geomap("清扫轨迹 Sweeper tracks", "markers", "speed_kmh",
		influxTable(`SELECT last("lat") AS "lat", last("lon") AS "lon", last("speed_kmh") AS "speed_kmh", last("brush_on") AS "brush_on" FROM "sweeper" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "device" fill(none)`)))
	p.Interval = "1m"
	b.add(12, 6, timeseries("作业速度 Sweeping speed", "velocitykmh",
		influx(`SELECT mean("speed_kmh") FROM "sweeper" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "device" fill(none)`).alias("$tag_device")).
		thresholds("green", 8, "red").thresholdLines().describe("The demo routes' sweeping speed is 8 km/h; each route sets its own."))
	b.add(12, 6, timeseries("水箱 Water tank", "percent",
		influx(`SELECT mean("water_pct") FROM "sweeper" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "device" fill(none)`).alias("$tag_device")).
		minmax(0, 100))
	return b.build()
}
