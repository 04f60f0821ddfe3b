#!/usr/bin/env bash
# Ingest benchmark: simulated devices publish QoS 1 and QoS 0 JSON readings
# through the gateway into InfluxDB on this machine; then the same load against
# Debian's mosquitto as the broker-only reference; then a backlog drain.
#
#   make bench                          defaults below
#   DEVICES=500 DURATION=30s make bench
#   BACKLOG=600 LIVE_RATE=1000 make bench   ten-minute backlog at 1000 msg/s
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-200}
DURATION=${DURATION:-20s}
WINDOW=${WINDOW:-8}
BACKLOG=${BACKLOG:-60}          # seconds of outage to build a backlog
LIVE_RATE=${LIVE_RATE:-1000}    # live messages per second during and after the outage
BASE=${BENCH_PORT_BASE:-19000}
INFLUX_PORT=$((BASE + 86)); MQTT_PORT=$((BASE + 883)); HTTP_PORT=$((BASE + 80)); MOSQ_PORT=$((BASE + 884))
W=$(mktemp -d)
. scripts/influxdb.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

metric() { # metric NAME [LABEL_FILTER]: sum of a metric from the gateway's /metrics
  curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" -v f="${2:-}" '
    $1 ~ "^"n"({|$)" && index($1, f) { s += $2 } END { printf "%.6f\n", s }'
}
proc_cpu() { awk '{ printf "%.2f\n", ($14 + $15) / 100 }' "/proc/$1/stat"; }
proc_rss_mb() { awk '/VmHWM/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }

start_influx() {
  influx_start "$W/influx" "$INFLUX_PORT" "$W/influxd.log"
  pids+=("$INFLUX_PID")
}

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); InfluxDB runs on it too"
start_influx
bin/sanisim bench-config -devices "$DEVICES" -out "$W/bench.yaml" -influxdb-url "http://127.0.0.1:$INFLUX_PORT" \
  -mqtt-address "127.0.0.1:$MQTT_PORT" -http-address "127.0.0.1:$HTTP_PORT" -spool-dir "$W/spool"
bin/sanigate -config "$W/bench.yaml" -log-level warn 2>"$W/sanigate.log" &
GW=$!; pids+=("$GW")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null && break; sleep 0.1; done

run_gateway() { # qos offset
  local cpu0 fs0 a0 out cpu1 fs1 a1 secs
  cpu0=$(metric process_cpu_seconds_total); fs0=$(metric sanigate_spool_fsyncs_total); a0=$(metric sanigate_messages_accepted_total)
  out=$(bin/sanisim bench -broker "127.0.0.1:$MQTT_PORT" -devices "$DEVICES" -qos "$1" -window "$WINDOW" -duration "$DURATION" -time-offset "$2")
  sleep 1
  cpu1=$(metric process_cpu_seconds_total); fs1=$(metric sanigate_spool_fsyncs_total); a1=$(metric sanigate_messages_accepted_total)
  echo "gateway:   $out"
  secs=$(echo "$out" | sed -E 's/.*elapsed=([0-9.]+)s.*/\1/')
  awk -v c0="$cpu0" -v c1="$cpu1" -v a0="$a0" -v a1="$a1" -v f0="$fs0" -v f1="$fs1" -v s="$secs" 'BEGIN {
    n = a1 - a0
    printf "           accepted into the spool %.0f = %.0f/s; gateway CPU %.1f s = %.1f us/message; fsyncs %.0f/s, %.1f messages per fsync\n",
      n, n/s, c1-c0, (c1-c0)/n*1e6, (f1-f0)/s, (f1>f0 ? n/(f1-f0) : 0) }'
}

echo "== QoS 1 through the gateway into InfluxDB ($DEVICES devices, window $WINDOW, $DURATION)"
run_gateway 1 1h
echo "== QoS 0 through the gateway into InfluxDB (QoS 0 the client sends faster than anyone reads is lost in TCP buffers at close: count what was accepted)"
run_gateway 0 2h
sleep 3
echo "           points written to InfluxDB so far: $(metric sanigate_points_written_total | cut -d. -f1); gateway peak RSS $(proc_rss_mb "$GW") MiB"

echo "== backlog: InfluxDB down for ${BACKLOG}s under ${LIVE_RATE} msg/s live QoS 1 load, then back while live load continues"
kill "$INFLUX_PID"; wait "$INFLUX_PID" 2>/dev/null || true
LIVE_SECS=$((BACKLOG + 600))
bin/sanisim bench -broker "127.0.0.1:$MQTT_PORT" -devices 50 -qos 1 -rate "$LIVE_RATE" -duration "${LIVE_SECS}s" -time-offset 3h >"$W/live.txt" &
LIVE=$!
sleep "$BACKLOG"
lag=$(metric sanigate_spool_consumer_lag_bytes 'consumer="influxdb"')
w0=$(metric sanigate_points_written_total)
start_influx
t0=$(date +%s.%N)
while :; do
  sleep 1
  l=$(metric sanigate_spool_consumer_lag_bytes 'consumer="influxdb"')
  age=$(metric sanigate_spool_oldest_unsent_age_seconds 'consumer="influxdb"')
  if awk -v a="$age" 'BEGIN { exit !(a < 3) }'; then break; fi
  if awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN { exit !(now - t0 > 600) }'; then echo "           (gave up after 600 s)"; break; fi
done
t1=$(date +%s.%N); w1=$(metric sanigate_points_written_total)
awk -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" -v live="$LIVE_RATE" -v lag="$lag" 'BEGIN {
  d = t1 - t0; r = (w1 - w0) / d
  printf "           backlog of %.0f MiB drained in %.1f s while live load went on: %.0f points/s written = %.1f x the live rate\n", lag/1048576, d, r, r/live }'
kill "$LIVE" 2>/dev/null || true; wait "$LIVE" 2>/dev/null || true

echo "== reference: Debian's mosquitto, broker only (no storage), same load"
scripts/install-packages.sh mosquitto >/dev/null
cat > "$W/mosquitto.conf" <<CONF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 0
max_queued_messages 100000
CONF
/usr/sbin/mosquitto -c "$W/mosquitto.conf" >"$W/mosquitto.log" 2>&1 &
MQ=$!; pids+=("$MQ")
sleep 1
for q in 1 0; do
  c0=$(proc_cpu "$MQ")
  out=$(bin/sanisim bench -broker "127.0.0.1:$MOSQ_PORT" -devices "$DEVICES" -qos "$q" -window "$WINDOW" -duration "$DURATION")
  c1=$(proc_cpu "$MQ")
  echo "mosquitto: $out"
  echo "           mosquitto CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.1f", b-a}') s; peak RSS $(proc_rss_mb "$MQ") MiB"
done
