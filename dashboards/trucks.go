package dashboards

// Trucks shows the waste trucks: tracks, load curves with unloads, unloads
// outside licensed sites, spillage and overload, kitchen waste delivered.
func Trucks() *Dashboard {
	b := newBoard("sanigate-trucks", "收运车辆 Trucks",
		"Tracks, loads and unloads of the waste trucks; dumping, spillage and overload; kitchen waste delivered per plant.", "trucks")
	b.vars(
		tagVar("district", "区 District", "truck", ""),
		tagVar("contractor", "承包商 Contractor", "truck", ""),
		tagVar("category", "类别 Category", "truck", ""),
		tagVar("device", "车辆 Truck", "truck", match("contractor", "category")),
		tagVar("site", "处理厂 Plant", "event", `"event" = 'weighing'`),
	)
	f := match("district", "contractor", "category", "device")
	b.annotate(annotation("卸料 Unloads", "orange",
		`SELECT "load_kg", "device", "site" FROM "forever"."event" WHERE "event" = 'unload_start' AND $timeFilter AND `+f, "site", "device"))

	b.row("轨迹 Tracks")
	p := b.add(14, 12, geomap("车辆轨迹 Truck tracks", "markers", "load_kg",
		influxTable(`SELECT last("lat") AS "lat", last("lon") AS "lon", last("speed_kmh") AS "speed_kmh", last("load_kg") AS "load_kg" FROM "truck" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "device" fill(none)`)).
		describe("One position per truck and interval, coloured by load."))
	p.Interval = "1m"
	b.add(10, 12, geomap("卸料位置 Where trucks unloaded", "markers", "",
		influxTable(`SELECT "lat", "lon", "load_kg", "device", "site" FROM "forever"."event" WHERE "event" = 'unload_start' AND $timeFilter AND `+f)))

	b.row("载重 Load")
	load := b.add(16, 9, timeseries("载重与卸料 Load with unload events", "masskg",
		influx(`SELECT mean("load_kg") FROM "truck" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "device" fill(none)`).alias("$tag_device"),
		influx(`SELECT last("load_kg") FROM "forever"."event" WHERE "event" = 'unload_start' AND $timeFilter AND `+f+` GROUP BY time($__interval), "device" fill(none)`).alias("卸料 unload $tag_device")))
	load.FieldConfig.Overrides = append(load.FieldConfig.Overrides, Override{
		Matcher:    Matcher{ID: "byFrameRefID", Options: "B"},
		Properties: []Property{{ID: "custom.drawStyle", Value: "points"}, {ID: "custom.pointSize", Value: 9}}})
	b.add(8, 9, timeseries("车速 Speed", "velocitykmh",
		influx(`SELECT mean("speed_kmh") FROM "truck" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "device" fill(none)`).alias("$tag_device")))

	b.row("违规 Violations")
	b.add(4, 8, stat("场外卸料 Unloads outside licensed sites", "short",
		influx(`SELECT count("count") FROM "forever"."violation" WHERE "type" =~ /^(illegal_dumping|wrong_site|unaccounted_load)$/ AND $timeFilter AND `+f)).
		noValue("0").thresholds("green", 1, "red").colorByThresholds())
	b.add(20, 8, table("场外卸料记录 Unloads outside licensed sites", "",
		influxTable(`SELECT "type", "severity", "device", "site", "summary", "lat", "lon" FROM "forever"."violation" WHERE "state" <> 'resolved' AND "type" =~ /^(illegal_dumping|wrong_site|unaccounted_load)$/ AND $timeFilter AND `+f)).
		describe("illegal_dumping: load dropped while stopped outside every site accepting the truck's category (critical in a farm); wrong_site: unloaded at a site that does not accept it; unaccounted_load: load lower after a tracking gap with no accepting site within reach (critical when a farm was)."))
	b.add(12, 8, bars("遗撒、超载与轨迹中断 Spillage, overload and tracking gaps per hour", "short", true,
		influx(`SELECT count("count") FROM "forever"."violation" WHERE "type" =~ /^(spillage|overload|tracking_gap)$/ AND $timeFilter AND `+f+` GROUP BY time(1h), "type" fill(0)`).alias("$tag_type")))
	b.add(12, 8, table("遗撒、超载与轨迹中断记录 Spillage, overload and tracking gaps", "",
		influxTable(`SELECT "type", "severity", "device", "district", "summary", "duration_s" FROM "forever"."violation" WHERE "state" <> 'resolved' AND "type" =~ /^(spillage|overload|tracking_gap)$/ AND $timeFilter AND `+f)).
		rename("duration_s", "时长 duration", "s"))

	b.row("厨余垃圾 Kitchen waste")
	b.add(12, 8, bars("各厂每日进场量(地磅) Kitchen waste delivered per plant per day (weighbridge)", "masskg", true,
		influx(`SELECT sum("net_kg") FROM "forever"."event" WHERE "event" = 'weighing' AND $timeFilter AND `+match("site")+` GROUP BY time(1d), "site" fill(0) tz('Asia/Shanghai')`).alias("$tag_site")).
		from("7d").describe("Net weight of the weighings at the plants' weighbridges."))
	b.add(12, 8, bars("各厂每日卸料量(车载秤) Kitchen waste unloaded per site per day (on-board scales)", "masskg", true,
		influx(`SELECT sum("load_kg") FROM "forever"."event" WHERE "event" = 'unload_start' AND "category" = 'kitchen' AND $timeFilter AND `+f+` GROUP BY time(1d), "site" fill(0) tz('Asia/Shanghai')`).alias("$tag_site")).
		from("7d").describe("The load kitchen-waste trucks reported when they began to unload, by the site they were in; compare with the weighbridge."))
	b.add(24, 8, table("过磅记录 Weighings", "",
		influxTable(`SELECT "site", "truck_id", "gross_kg", "tare_kg", "net_kg", "weighing_seq" FROM "forever"."event" WHERE "event" = 'weighing' AND $timeFilter AND `+match("site"))).
		rename("gross_kg", "毛重 gross", "masskg").rename("tare_kg", "皮重 tare", "masskg").rename("net_kg", "净重 net", "masskg"))
	b.longRange("truck", f, [3]string{"load_kg", "平均载重(90天) Mean load, 90 days", "masskg"},
		[3]string{"speed_kmh", "平均车速(90天) Mean speed, 90 days", "velocitykmh"})
	return b.build()
}
