#!/usr/bin/env bash
# The same load through the stack one would otherwise glue together: Debian's
# mosquitto as the broker and Telegraf's mqtt_consumer writing to the same
# InfluxDB, against the gateway in the same run. Prints CPU per stored
# message of both and their ratio, at RATE msg/s and at saturation.
#
#   make bench-peer                      (builds Telegraf into .tools/bin first)
#   DURATION=10s make bench-peer
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-200}
DURATION=${DURATION:-20s}
WINDOW=${WINDOW:-8}
RATE=${RATE:-10000}
BASE=${BENCH_PORT_BASE:-19000}
INFLUX_PORT=$((BASE + 186)); MOSQ_PORT=$((BASE + 884))
TELEGRAF=.tools/bin/telegraf
W=$(mktemp -d)
. scripts/influxdb.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

echo "== the gateway (make bench, without the idle, backlog and mosquitto parts)"
FIGURES="$W/gateway.txt" IDLE_DEVICES=0 BACKLOG=0 MOSQUITTO=0 DEVICES=$DEVICES DURATION=$DURATION WINDOW=$WINDOW RATE=$RATE \
  scripts/bench.sh | sed -n '/^| figure/,$p'
. "$W/gateway.txt"

proc_cpu() { awk '{ printf "%.2f\n", ($14 + $15) / 100 }' "/proc/$1/stat"; }
proc_rss_mb() { awk '/VmHWM/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }
stored() { # points in the peer database
  curl -fsS -G "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode db=peer \
    --data-urlencode "q=SELECT count(fill_pct) FROM bin" | sed -nE 's/.*"values":\[\[[^,]*,([0-9]+)\]\].*/\1/p'
}

scripts/install-packages.sh mosquitto >/dev/null
influx_start "$W/influx" "$INFLUX_PORT" "$W/influxd.log"
pids+=("$INFLUX_PID")
curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE peer"
cat > "$W/mosquitto.conf" <<CONF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 1000000
CONF
/usr/sbin/mosquitto -c "$W/mosquitto.conf" >"$W/mosquitto.log" 2>&1 &
MQ=$!; pids+=("$MQ")
cat > "$W/telegraf.conf" <<CONF
[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = 5000
  metric_buffer_limit = 2000000
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["tcp://127.0.0.1:$MOSQ_PORT"]
  topics = ["sanigate/v1/devices/+/telemetry"]
  qos = 1
  client_id = "telegraf-peer"
  persistent_session = true
  max_undelivered_messages = 20000
  data_format = "json"
  json_time_key = "ts"
  json_time_format = "unix_ms"
  name_override = "bin"
  topic_tag = ""
  [[inputs.mqtt_consumer.topic_parsing]]
    topic = "sanigate/v1/devices/+/telemetry"
    tags = "_/_/_/device/_"
[[outputs.influxdb]]
  urls = ["http://127.0.0.1:$INFLUX_PORT"]
  database = "peer"
  skip_database_creation = true
CONF
sleep 1
"$TELEGRAF" --config "$W/telegraf.conf" >"$W/telegraf.log" 2>&1 &
TG=$!; pids+=("$TG")
sleep 3

run_peer() { # offset [rate]: sets PEER_US and PEER_RATE
  local c0 s0 out n last now secs
  c0=$(awk -v a="$(proc_cpu "$MQ")" -v b="$(proc_cpu "$TG")" 'BEGIN { print a + b }'); s0=$(stored); s0=${s0:-0}
  out=$(bin/sanisim bench -broker "127.0.0.1:$MOSQ_PORT" -devices "$DEVICES" -qos 1 -window "$WINDOW" -rate "${2:-0}" -duration "$DURATION" -time-offset "$1")
  echo "peer:      $out"
  n=$(echo "$out" | sed -E 's/.*acked=([0-9]+).*/\1/'); secs=$(echo "$out" | sed -E 's/.*elapsed=([0-9.]+)s.*/\1/')
  last=-1  # wait until Telegraf has stored what mosquitto acknowledged, or stops making progress
  for _ in $(seq 1 120); do
    sleep 1; now=$(stored); now=${now:-0}
    [ $((now - s0)) -ge "$n" ] && break
    [ "$now" = "$last" ] && break
    last=$now
  done
  c1=$(awk -v a="$(proc_cpu "$MQ")" -v b="$(proc_cpu "$TG")" 'BEGIN { print a + b }')
  read -r PEER_US PEER_RATE < <(awk -v c0="$c0" -v c1="$c1" -v s0="$s0" -v s1="$now" -v s="$secs" 'BEGIN { n = s1 - s0; printf "%.1f %.0f\n", (c1-c0)/n*1e6, n/s }')
  echo "           stored $((now - s0)) of $n acknowledged; mosquitto + telegraf CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b-a }') s = $PEER_US us/message"
}
echo "== QoS 1 at $RATE msg/s through mosquitto + Telegraf into InfluxDB"
run_peer 0 "$RATE"; PMOD_US=$PEER_US; PMOD_RATE=$PEER_RATE
echo "== QoS 1 at saturation through mosquitto + Telegraf into InfluxDB"
run_peer 0; PSAT_US=$PEER_US; PSAT_RATE=$PEER_RATE
echo
echo "| CPU per stored message | gateway | mosquitto + Telegraf | peer / gateway |"
echo "|---|---|---|---|"
awk -v g="$MOD_US" -v p="$PMOD_US" -v gr="$MOD_RATE" -v pr="$PMOD_RATE" -v r="$RATE" 'BEGIN { printf "| %d msg/s offered | %s us (%s/s) | %s us (%s/s) | %.2f |\n", r, g, gr, p, pr, p/g }'
awk -v g="$SAT_US" -v p="$PSAT_US" -v gr="$SAT_RATE" -v pr="$PSAT_RATE" 'BEGIN { printf "| saturation | %s us (%s/s) | %s us (%s/s) | %.2f |\n", g, gr, p, pr, p/g }'
echo "| peak RSS (QoS 1 runs) | ${PEAK_QOS1:-$PEAK} MiB | mosquitto $(proc_rss_mb "$MQ") MiB + Telegraf $(proc_rss_mb "$TG") MiB | |"
