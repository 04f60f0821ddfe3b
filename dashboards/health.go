package dashboards

import "strings"

// sel is the label selector every gateway query carries.
const sel = `{instance=~"$instance"}`

// q puts the instance selector into a PromQL expression where {} stands.
func q(expr string) string { return strings.ReplaceAll(expr, "{}", sel) }

// Health shows the gateway itself, from its Prometheus metrics: ingest,
// refusals, the spool, the InfluxDB writer and the Modbus pollers.
func Health() *Dashboard {
	b := newBoard("sanigate-health", "网关运行 Gateway health",
		"Ingest rates, refusals, spool backlog, InfluxDB write latency and errors, Modbus polling, from the gateway's /metrics.", "health")
	b.d.Time = TimeRange{From: "now-6h", To: "now"}
	b.d.Refresh = "30s"
	b.vars(promVar("instance", "网关 Gateway", "label_values(sanigate_points_written_total, instance)"))

	b.row("接入 Ingest")
	b.add(8, 8, timeseries("接收消息 Messages accepted /s", "cps",
		prom(q(`sum by (kind, transport) (rate(sanigate_messages_accepted_total{}[$__rate_interval]))`), "{{kind}} {{transport}}")))
	b.add(8, 8, timeseries("接收读数 Readings accepted /s", "cps",
		prom(q(`sum by (kind) (rate(sanigate_readings_accepted_total{}[$__rate_interval]))`), "{{kind}}")))
	b.add(4, 4, stat("在线连接 Devices connected", "short", prom(q(`sum(sanigate_devices_connected{})`), "connected")))
	b.add(4, 4, stat("写入点数 Points written /s", "cps", prom(q(`sum(rate(sanigate_points_written_total{}[$__rate_interval]))`), "points")))
	b.add(8, 4, stat("空间满 Spool full", "short", prom(q(`max(sanigate_spool_full{})`), "full")).
		thresholds("green", 1, "red").colorByThresholds().describe("1 while the spool's disk quota is full and publishers are pushed back."))
	b.add(8, 8, bars("拒收(按原因) Messages refused by reason /s", "cps", true,
		prom(q(`sum by (reason) (rate(sanigate_messages_rejected_total{}[$__rate_interval]))`), "{{reason}}")))
	b.add(8, 8, timeseries("认证与权限 Authentication and ACL", "cps",
		prom(q(`sum by (reason) (rate(sanigate_mqtt_auth_failures_total{}[$__rate_interval]))`), "auth {{reason}}"),
		prom(q(`sum(rate(sanigate_mqtt_acl_denied_total{}[$__rate_interval]))`), "ACL denied"),
		prom(q(`sum by (where) (rate(sanigate_mqtt_panics_recovered_total{}[$__rate_interval]))`), "panic {{where}}")))
	b.add(8, 8, timeseries("GPS过滤与回压 GPS fixes filtered and backpressure /s", "cps",
		prom(q(`sum by (reason) (rate(sanigate_gps_fixes_filtered_total{}[$__rate_interval]))`), "GPS {{reason}}"),
		prom(q(`sum by (transport) (rate(sanigate_messages_backpressured_total{}[$__rate_interval]))`), "pushed back {{transport}}"),
		prom(q(`sum(rate(sanigate_backpressure_seconds_total{}[$__rate_interval]))`), "seconds pushed back per second")))

	b.row("缓存 Spool")
	b.add(8, 8, timeseries("缓存占用 Spool size against quota", "bytes",
		prom(q(`sum(sanigate_spool_bytes{})`), "used"), prom(q(`max(sanigate_spool_max_bytes{})`), "quota")))
	b.add(8, 8, timeseries("积压 Backlog per consumer", "bytes",
		prom(q(`max by (consumer) (sanigate_spool_consumer_lag_bytes{})`), "{{consumer}}")))
	b.add(8, 8, timeseries("最旧未发送 Oldest unsent reading age", "s",
		prom(q(`max by (consumer) (sanigate_spool_oldest_unsent_age_seconds{})`), "{{consumer}}")).
		thresholds("green", 60, "orange", 600, "red").thresholdLines())
	b.add(8, 8, timeseries("追加与同步 Appends and fsyncs /s", "cps",
		prom(q(`sum(rate(sanigate_spool_appends_total{}[$__rate_interval]))`), "appends"),
		prom(q(`sum(rate(sanigate_spool_fsyncs_total{}[$__rate_interval]))`), "fsyncs")))
	b.add(8, 8, timeseries("同步延迟 fsync latency", "s",
		prom(q(`histogram_quantile(0.5, sum by (le) (rate(sanigate_spool_fsync_duration_seconds_bucket{}[$__rate_interval])))`), "p50"),
		prom(q(`histogram_quantile(0.99, sum by (le) (rate(sanigate_spool_fsync_duration_seconds_bucket{}[$__rate_interval])))`), "p99")))
	b.add(8, 8, timeseries("分段数 Spool segments", "short", prom(q(`sum(sanigate_spool_segments{})`), "segments")))

	b.row("写入 InfluxDB writer")
	b.add(8, 8, timeseries("写入延迟 Write latency", "s",
		prom(q(`histogram_quantile(0.5, sum by (le) (rate(sanigate_write_duration_seconds_bucket{}[$__rate_interval])))`), "p50"),
		prom(q(`histogram_quantile(0.99, sum by (le) (rate(sanigate_write_duration_seconds_bucket{}[$__rate_interval])))`), "p99")))
	b.add(8, 8, timeseries("批次与重试 Batches and retries /s", "cps",
		prom(q(`sum(rate(sanigate_writer_batches_total{}[$__rate_interval]))`), "batches"),
		prom(q(`sum(rate(sanigate_writer_retries_total{}[$__rate_interval]))`), "retries")))
	b.add(8, 8, timeseries("写入错误 Write errors and dead letters", "short",
		prom(q(`sum by (class) (increase(sanigate_write_errors_total{}[$__rate_interval]))`), "{{class}}"),
		prom(q(`sum(increase(sanigate_dead_letters_total{}[$__rate_interval]))`), "dead letters")))

	b.row("Modbus 采集 Modbus polling")
	b.add(8, 8, bars("轮询结果 Polls by result /s", "cps", true,
		prom(q(`sum by (result) (rate(sanigate_modbus_polls_total{}[$__rate_interval]))`), "{{result}}")))
	b.add(8, 8, bars("轮询错误 Poll errors by kind /s", "cps", true,
		prom(q(`sum by (kind) (rate(sanigate_modbus_errors_total{}[$__rate_interval]))`), "{{kind}}")))
	b.add(8, 8, timeseries("轮询耗时 Poll duration p95 by device", "s",
		prom(q(`histogram_quantile(0.95, sum by (le, device) (rate(sanigate_modbus_poll_duration_seconds_bucket{}[$__rate_interval])))`), "{{device}}")))
	b.add(12, 8, bargauge("距上次成功 Since last successful poll", "s",
		prom(q(`time() - max by (device) (sanigate_modbus_last_success_timestamp_seconds{})`), "{{device}}")).
		opt("reduceOptions", map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false}).
		thresholds("green", 60, "orange", 300, "red"))
	b.add(12, 8, timeseries("丢弃与提交失败 Readings dropped and refused /s", "cps",
		prom(q(`sum by (device) (rate(sanigate_modbus_readings_dropped_total{}[$__rate_interval]))`), "dropped {{device}}"),
		prom(q(`sum by (device) (rate(sanigate_modbus_emit_errors_total{}[$__rate_interval]))`), "refused {{device}}"),
		prom(q(`histogram_quantile(0.99, sum by (le) (rate(sanigate_modbus_poll_lateness_seconds_bucket{}[$__rate_interval])))`), "poll lateness p99 (s)")))
	return b.build()
}
