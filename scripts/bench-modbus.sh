#!/usr/bin/env bash
# Modbus polling through one gateway: N simulated toilet controllers (served
# by sanisim in a process of its own) polled every second into InfluxDB.
# Reports poll lateness (how late each poll started: the schedule's jitter),
# requests per second, errors, and the gateway's CPU and memory.
#   DEVICES=500 SECONDS=60 make bench-modbus
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-500}
SECS=${SECONDS_RUN:-60}
BASE=${BENCH_PORT_BASE:-19200}
INFLUX_PORT=$((BASE + 86)); MQTT_PORT=$((BASE + 83)); HTTP_PORT=$((BASE + 80))
W=$(mktemp -d)
. scripts/influxdb.sh
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
metric() {
  curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" { s += $2 } END { printf "%.6f\n", s }'
}
influx_start "$W/influx" "$INFLUX_PORT" "$W/influxd.log"
pids+=("$INFLUX_PID")
bin/sanisim modbus-fleet -devices "$DEVICES" -base-port $((BASE + 1000)) -out "$W/gw.yaml" -influxdb-url "http://127.0.0.1:$INFLUX_PORT" \
  -mqtt-address "127.0.0.1:$MQTT_PORT" -http-address "127.0.0.1:$HTTP_PORT" -spool-dir "$W/spool" >"$W/sims.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do [ -s "$W/gw.yaml" ] && grep -q "serving" "$W/sims.log" && break; sleep 0.1; done
bin/sanigate ${SANIGATE_FLAGS:-} -config "$W/gw.yaml" -log-level warn 2>"$W/gw.log" &
GW=$!; pids+=("$GW")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" 2>/dev/null && break; sleep 0.1; done
sleep 5 # let every device's schedule start
c0=$(metric process_cpu_seconds_total); r0=$(metric sanigate_modbus_requests_total); e0=$(metric sanigate_modbus_errors_total)
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep '^sanigate_modbus_poll_lateness_seconds_bucket' >"$W/lat0"
sleep "$SECS"
c1=$(metric process_cpu_seconds_total); r1=$(metric sanigate_modbus_requests_total); e1=$(metric sanigate_modbus_errors_total)
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep '^sanigate_modbus_poll_lateness_seconds_bucket' >"$W/lat1"
rss=$(metric process_resident_memory_bytes)
echo "== $DEVICES Modbus TCP toilet controllers polled every 1s through one gateway, ${SECS}s (InfluxDB on the same machine)"
awk -v c0="$c0" -v c1="$c1" -v r0="$r0" -v r1="$r1" -v e0="$e0" -v e1="$e1" -v s="$SECS" -v rss="$rss" 'BEGIN {
  printf "requests %.0f/s, errors %.0f, gateway CPU %.1f%% of one core, RSS %.0f MiB\n", (r1-r0)/s, e1-e0, 100*(c1-c0)/s, rss/1048576 }'
# Poll lateness quantiles from the histogram (bucket upper bounds), over the window.
paste "$W/lat0" "$W/lat1" | awk '{
  match($1, /le="[^"]*"/); le = substr($1, RSTART+4, RLENGTH-5)
  d[le] += $4 - $2; if (!(le in seen)) { order[++n] = le; seen[le] = 1 } }
  END {
    total = d["+Inf"]; if (total == 0) { print "no polls"; exit }
    for (q = 1; q <= 2; q++) {
      want = (q == 1 ? 0.5 : 0.99) * total
      for (i = 1; i <= n; i++) { if (d[order[i]] >= want) { printf "poll lateness p%s <= %s s\n", (q == 1 ? "50" : "99"), order[i]; break } }
    }
    printf "polls measured: %d\n", total }'
