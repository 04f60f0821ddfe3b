package dashboards

// Bins shows the smart bins: fill levels and their distribution, bins over
// 90 %, overflow and fire, sorting contamination, collections per day.
func Bins() *Dashboard {
	b := newBoard("sanigate-bins", "智能垃圾桶 Bins",
		"Fill levels, overflow and fire, sorting contamination and collections of the smart bins.", "bins")
	b.vars(
		tagVar("district", "区 District", "bin", ""),
		tagVar("contractor", "承包商 Contractor", "bin", ""),
		tagVar("category", "类别 Category", "bin", ""),
		tagVar("device", "桶 Bin", "bin", match("district", "contractor", "category")),
	)
	f := match("district", "contractor", "category", "device")
	latest := `SELECT last("fill_pct") FROM "bin" WHERE $timeFilter AND ` + f + ` GROUP BY "device"`

	b.row("满溢 Fill level")
	b.add(4, 6, stat("满溢桶数 Bins over 90 %", "short",
		influx(`SELECT count("last") FROM (`+latest+`) WHERE "last" >= 90`)).
		from("1h").noValue("0").thresholds("green", 1, "orange", 10, "red").colorByThresholds().
		describe("Bins whose latest reading in the last hour is at least 90 % full."))
	b.add(4, 6, stat("平均满溢率 Mean fill level", "percent",
		influx(`SELECT mean("last") FROM (`+latest+`)`)).from("1h").decimals(1).
		thresholds("green", 70, "orange", 90, "red").colorByThresholds())
	b.add(4, 6, stat("在线桶数 Bins reporting", "short",
		influx(`SELECT count("last") FROM (`+latest+`)`)).from("15m"))
	b.add(12, 6, histogram("满溢率分布 Fill level distribution", "percent", 10,
		influxTable(`SELECT last("fill_pct") AS "fill_pct" FROM "bin" WHERE $timeFilter AND `+f+` GROUP BY "device"`)).
		from("1h").describe("The latest fill level of each bin, in 10 % buckets."))
	b.add(12, 8, timeseries("满溢率(按类别) Fill level by category", "percent",
		influx(`SELECT mean("fill_pct") FROM "bin" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "category" fill(none)`).alias("$tag_category")).
		minmax(0, 100).thresholds("green", 90, "red").thresholdLines())
	p := b.add(12, 8, bars("满溢桶数趋势 Bins over 90 % over time", "short", false,
		influx(`SELECT count("max") FROM (SELECT max("fill_pct") FROM "bin" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "device") WHERE "max" >= 90 AND $timeFilter GROUP BY time($__interval) fill(0)`).alias("满溢 over 90 %")))
	p.Interval = "15m"
	b.add(12, 8, table("最满的桶 Fullest bins", "",
		influxTable(`SELECT last("fill_pct") AS "fill_pct", last("weight_kg") AS "weight_kg", last("battery_pct") AS "battery_pct" FROM "bin" WHERE $timeFilter AND `+f+` GROUP BY "device", "district", "category"`)).
		from("1h").hide("Time").sortBy("fill_pct", true).
		rename("fill_pct", "满溢 fill", "percent").rename("weight_kg", "重量 weight", "masskg").rename("battery_pct", "电量 battery", "percent").
		thresholds("green", 90, "red").cellColor("fill_pct"))
	b.add(12, 8, table("电量最低的桶 Lowest batteries", "percent",
		influxTable(`SELECT last("battery_pct") AS "battery_pct" FROM "bin" WHERE $timeFilter AND `+f+` GROUP BY "device", "district"`)).
		from("1h").hide("Time").sortBy("battery_pct", false).thresholds("red", 15, "orange", 30, "green").cellColor("battery_pct"))

	b.row("满溢与起火 Overflow and fire")
	b.add(12, 8, bars("满溢与起火违规 Overflow and fire violations", "short", true,
		influx(`SELECT count("count") FROM "forever"."violation" WHERE "type" =~ /^(bin_overflow|bin_fire)$/ AND $timeFilter AND `+f+` GROUP BY time(1h), "type" fill(0)`).alias("$tag_type")))
	b.add(12, 8, table("满溢与起火记录 Overflow and fire violations", "",
		influxTable(`SELECT "type", "severity", "device", "district", "summary", "duration_s", "resolved" FROM "forever"."violation" WHERE "state" <> 'resolved' AND "type" =~ /^(bin_overflow|bin_fire)$/ AND $timeFilter AND `+f)).
		rename("duration_s", "时长 duration", "s"))
	b.add(24, 6, table("起火报警与开盖事件 Fire alarms and lid-open events", "",
		influxTable(`SELECT "event", "device", "district", "temp_c", "fill_pct" FROM "forever"."event" WHERE "kind" = 'bin' AND "event" =~ /^(fire_alarm|lid_open)$/ AND $timeFilter AND `+f)).
		rename("temp_c", "温度 temperature", "celsius").rename("fill_pct", "满溢 fill", "percent"))

	b.row("分类 Sorting")
	b.add(12, 8, timeseries("分类不准(按区) Sorting contamination by district", "percent",
		influx(`SELECT mean("contamination_pct") FROM "bin" WHERE $timeFilter AND `+f+` GROUP BY time($__interval), "district" fill(none)`).alias("$tag_district")).
		thresholds("green", 20, "red").thresholdLines().
		describe("Camera estimate of wrongly sorted waste; 20 % on three readings in a row raises sorting_contamination."))
	b.add(6, 8, bargauge("分类不准(按区和类别) Contamination by district and category", "percent",
		influx(`SELECT mean("contamination_pct") FROM "bin" WHERE $timeFilter AND `+f+` GROUP BY "district", "category"`).alias("$tag_district $tag_category")).
		opt("reduceOptions", map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}).
		minmax(0, 40).thresholds("green", 10, "orange", 20, "red"))
	b.add(6, 8, bars("分类不准违规 Contamination violations per day", "short", true,
		influx(`SELECT count("count") FROM "forever"."violation" WHERE "type" = 'sorting_contamination' AND $timeFilter AND `+f+` GROUP BY time(1d), "district" fill(0) tz('Asia/Shanghai')`).alias("$tag_district")).
		from("7d"))

	b.row("收运 Collection")
	b.add(12, 8, bars("每日清运(按区) Bins emptied per day by district", "short", true,
		influx(`SELECT count("fill_pct") FROM "forever"."event" WHERE "event" = 'emptied' AND "kind" = 'bin' AND $timeFilter AND `+f+` GROUP BY time(1d), "district" fill(0) tz('Asia/Shanghai')`).alias("$tag_district")).
		from("7d"))
	b.add(12, 8, bars("每日收运(按类别) Truck pickups per day by category", "short", true,
		influx(`SELECT count("load_kg") FROM "forever"."event" WHERE "event" = 'pickup' AND $timeFilter AND `+match("district", "contractor", "category")+` GROUP BY time(1d), "category" fill(0) tz('Asia/Shanghai')`).alias("$tag_category")).
		from("7d").describe("Bins lifted by trucks (pickup events), by the truck's category."))
	b.longRange("bin", f, [3]string{"fill_pct", "平均满溢率(90天) Mean fill level, 90 days", "percent"},
		[3]string{"contamination_pct", "分类不准(90天) Sorting contamination, 90 days", "percent"})
	return b.build()
}
